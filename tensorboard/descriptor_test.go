package tensorboard

import (
	"encoding/binary"
	"os"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// eventDescriptor is tensorflow.Event with the fields bmc writes, built from
// TensorFlow's field numbers, so that the protobuf library itself (not this
// package's reader) decodes the files.
func eventDescriptor(t *testing.T) protoreflect.MessageDescriptor {
	t.Helper()
	opt := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()
	rep := descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
	field := func(name string, num int32, label *descriptorpb.FieldDescriptorProto_Label, typ descriptorpb.FieldDescriptorProto_Type, msg string) *descriptorpb.FieldDescriptorProto {
		f := &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(num), Label: label, Type: typ.Enum()}
		if msg != "" {
			f.TypeName = proto.String(msg)
		}
		return f
	}
	fd := &descriptorpb.FileDescriptorProto{
		Name: proto.String("event.proto"), Package: proto.String("tensorflow"), Syntax: proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("Event"), Field: []*descriptorpb.FieldDescriptorProto{
				field("wall_time", 1, opt, descriptorpb.FieldDescriptorProto_TYPE_DOUBLE, ""),
				field("step", 2, opt, descriptorpb.FieldDescriptorProto_TYPE_INT64, ""),
				field("file_version", 3, opt, descriptorpb.FieldDescriptorProto_TYPE_STRING, ""),
				field("summary", 5, opt, descriptorpb.FieldDescriptorProto_TYPE_MESSAGE, ".tensorflow.Summary"),
			}},
			{Name: proto.String("Summary"), Field: []*descriptorpb.FieldDescriptorProto{
				field("value", 1, rep, descriptorpb.FieldDescriptorProto_TYPE_MESSAGE, ".tensorflow.Summary.Value"),
			}, NestedType: []*descriptorpb.DescriptorProto{
				{Name: proto.String("Value"), Field: []*descriptorpb.FieldDescriptorProto{
					field("tag", 1, opt, descriptorpb.FieldDescriptorProto_TYPE_STRING, ""),
					field("simple_value", 2, opt, descriptorpb.FieldDescriptorProto_TYPE_FLOAT, ""),
				}},
			}},
		},
	}
	file, err := protodesc.NewFile(fd, nil)
	if err != nil {
		t.Fatal(err)
	}
	return file.Messages().ByName("Event")
}

func TestEventsDecodeWithTheProtobufLibrary(t *testing.T) {
	w, err := Create(t.TempDir(), time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Scalars(7, time.Unix(1700000001, 0), map[string]float64{"val/acc": 0.75, "train/loss": 0.5}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	data, _ := os.ReadFile(w.Path)
	desc := eventDescriptor(t)
	var events []*dynamicpb.Message
	for off := 0; off < len(data); {
		n := int(binary.LittleEndian.Uint64(data[off:]))
		msg := dynamicpb.NewMessage(desc)
		if err := (proto.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(data[off+12:off+12+n], msg); err != nil {
			t.Fatal(err)
		}
		if len(msg.GetUnknown()) != 0 {
			t.Errorf("event at byte %d has fields outside tensorflow.Event: %x", off, msg.GetUnknown())
		}
		events = append(events, msg)
		off += 16 + n
	}
	if len(events) != 2 {
		t.Fatalf("%d events, want 2", len(events))
	}
	get := func(m protoreflect.Message, name string) protoreflect.Value {
		return m.Get(m.Descriptor().Fields().ByName(protoreflect.Name(name)))
	}
	if v := get(events[0], "file_version").String(); v != "brain.Event:2" {
		t.Errorf("file_version = %q", v)
	}
	ev := events[1]
	if get(ev, "step").Int() != 7 || get(ev, "wall_time").Float() != 1700000001 {
		t.Errorf("step/wall_time = %v/%v", get(ev, "step"), get(ev, "wall_time"))
	}
	values := get(get(ev, "summary").Message(), "value").List()
	got := map[string]float64{}
	for i := range values.Len() {
		v := values.Get(i).Message()
		got[get(v, "tag").String()] = get(v, "simple_value").Float()
	}
	if len(got) != 2 || got["val/acc"] != 0.75 || got["train/loss"] != 0.5 {
		t.Errorf("scalars %v", got)
	}
}
