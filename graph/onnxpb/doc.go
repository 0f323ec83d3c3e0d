// Package onnxpb holds the Go types of the ONNX protobuf schema (IR version 8,
// ONNX 1.12), generated once and committed so that building bmc needs no
// protobuf compiler.
//
// To regenerate (Debian packages protobuf-compiler and libonnx-dev, and
// protoc-gen-go from google.golang.org/protobuf):
//
//	go generate ./graph/onnxpb
package onnxpb

//go:generate protoc -I/usr/include/onnx --go_out=. --go_opt=paths=source_relative --go_opt=Monnx.proto=bmc/graph/onnxpb onnx.proto
