package main

import "testing"

// MMCosine, MBSD, CML and MMPareto train from the CLI on 2 and 3
// modalities, with the transformer, ViT and BERT encoders, and on the
// CREMA-D fixture with a ResNet18 visual encoder; every run exports a
// model.onnx that predicts as the run does, and its FLOPs tally equals the
// static count.
func TestObjectiveMethodsRunFromTheCLI(t *testing.T) {
	synth := []string{"--data", "train=96,val=32,test=32", "--epochs", "2"}
	fixture := []string{"--dataset", "cremad", "--data-root", "../../datasets/testdata/cremad", "--data", "size=16,val_fraction=0.34",
		"--encoder", "resnet18", "--encoder", "audio=mlp:8,4", "--epochs", "1", "--batch-size", "2", "--eval-batch-size", "2"}
	transformers := []string{"--dataset", "synth-avt", "--epochs", "1", "--batch-size", "8", "--eval-batch-size", "8",
		"--data", "train=32,val=8,test=8,classes=3,shape.audio=6x8,shape.visual=3x32x32,vocab.text=40,shape.text=8",
		"--encoder", "audio=transformer:d_model=16,heads=2,ff=24,layers=1",
		"--encoder", "visual=vit_b_16:width=16,layers=1,heads=2,mlp=24",
		"--encoder", "text=bert:vocab=40,hidden=16,layers=1,heads=2,ff=24,max_len=16,out=12"}
	for _, tc := range []struct {
		method string
		hp     string
	}{
		{"mmcosine", "scaling=10"},
		{"mbsd", "modulation_starts=1"},
		{"cml", "lam=0.3"},
		{"mmpareto", "alpha=1.2"},
	} {
		for _, run := range []struct {
			name string
			args []string
		}{
			{"synth-av", append([]string{"--dataset", "synth-av", "--hp", tc.hp}, synth...)},
			{"synth-avt", append([]string{"--dataset", "synth-avt", "--hp", tc.hp}, synth...)},
			{"transformer-vit-bert", transformers},
			{"cremad-resnet18", fixture},
		} {
			t.Run(tc.method+"/"+run.name, func(t *testing.T) {
				checkMethodRun(t, false, append([]string{"--method", tc.method}, run.args...)...)
			})
		}
	}
}

// CML's removal order is drawn each epoch from the run's random stream: a
// run killed with SIGKILL resumes to the parameters of an uninterrupted one.
func TestCMLResumesBitForBit(t *testing.T) {
	checkKillResume(t, 3, "--method", "cml", "--dataset", "synth-avt", "--data", "train=128,val=32,test=32",
		"--encoder", "visual=mlp:16,8,dropout=0.2", "--epochs", "40", "--seed", "5")
}
