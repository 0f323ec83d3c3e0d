package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/spf13/pflag"

	"bmc/audio"
	"bmc/audio/tensorfile"
	"bmc/internal/atomicfile"
	"bmc/internal/machine"
)

// runPrepare runs bmc prepare KIND; audio is the only kind so far.
func runPrepare(args []string, stdout io.Writer) error {
	fs := flagSet("prepare", stdout)
	var o audioFlags
	o.register(fs)
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if err := fs.Parse(args); err != nil {
			return err // --help
		}
		return fmt.Errorf("prepare: name what to prepare (kinds: audio), e.g. bmc prepare audio --pipeline fbank …")
	}
	if args[0] != "audio" {
		return fmt.Errorf("prepare: unknown kind %q (kinds: audio)", args[0])
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("prepare audio: unexpected argument %q (inputs go in --in)", fs.Arg(0))
	}
	prep, err := o.prep(fs)
	if err != nil {
		return err
	}
	jobs, err := audioJobs(o.in, o.out, prep.format)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return fmt.Errorf("prepare audio: --out: %w", err)
	}
	return runAudioJobs(jobs, prep, o.jobs, o.force, stdout)
}

// audioFlags are the flags of bmc prepare audio.
type audioFlags struct {
	pipeline, in, out, format, resampler, channel string
	frames, rate, jobs                            int
	normMean, normStd, start                      float64
	noNorm, force                                 bool
	seed                                          uint64
}

func (o *audioFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&o.pipeline, "pipeline", "", "fbank (Kinetics-Sounds, CREMA-D: Kaldi log-mel, frames × 128) or stft (VGGSound: log|STFT|, 129 × 626)")
	fs.StringVar(&o.in, "in", "", "a folder (searched recursively for .wav files), a .wav file, or a text file listing WAV paths one per line")
	fs.StringVarP(&o.out, "out", "o", "", "output folder; a folder input's subfolders are mirrored")
	fs.StringVar(&o.format, "format", "npy", "output format: npy (numpy.load) or pt (torch.load, as CREMA-D's loader reads)")
	fs.IntVar(&o.frames, "frames", 1024, "fbank: pad with zero rows or crop to this many frames (0 keeps every frame)")
	fs.Float64Var(&o.normMean, "norm-mean", -4.503877, "fbank: normalise as (x − mean)/(2·std)")
	fs.Float64Var(&o.normStd, "norm-std", 5.141276, "fbank: normalise as (x − mean)/(2·std)")
	fs.BoolVar(&o.noNorm, "no-norm", false, "fbank: keep the raw log-mel values")
	fs.IntVar(&o.rate, "rate", 0, "fbank: resample to this rate in Hz first (default: keep each file's rate); stft always uses 16000")
	fs.StringVar(&o.resampler, "resampler", "kaiser-best", "resampling filter: kaiser-best (librosa's former default) or hann (torchaudio's default)")
	fs.StringVar(&o.channel, "channel", "mean", "channels to use: mean (average them) or a channel index")
	fs.Float64Var(&o.start, "start", 0, "stft: window start in seconds within the clip tiled to 10 s (default: random in [0, 5], per file)")
	fs.Uint64Var(&o.seed, "seed", 0, "stft: seed of the random window starts")
	fs.IntVarP(&o.jobs, "jobs", "j", runtime.GOMAXPROCS(0), "files processed in parallel")
	fs.BoolVar(&o.force, "force", false, "overwrite feature files that already exist")
}

// audioPrep is how every file is turned into features.
type audioPrep struct {
	pipeline string // "fbank" or "stft"
	format   string // "npy" or "pt"
	fbank    audio.FbankPipeline
	rate     int // resample to this rate; 0 keeps the file's
	filter   audio.ResampleFilter
	channel  int // channel index, or -1 for the mean
	start    int // stft window start in samples, or -1 for a random one
	seed     uint64
}

func (o *audioFlags) prep(fs *pflag.FlagSet) (*audioPrep, error) {
	if o.in == "" || o.out == "" {
		return nil, fmt.Errorf("prepare audio: --in and --out are required")
	}
	p := &audioPrep{pipeline: o.pipeline, format: o.format, channel: -1, start: -1, seed: o.seed}
	only := func(pipeline string, flags ...string) error {
		for _, f := range flags {
			if fs.Changed(f) && o.pipeline != pipeline {
				return fmt.Errorf("prepare audio: --%s applies to --pipeline %s only", f, pipeline)
			}
		}
		return nil
	}
	if o.pipeline == "" {
		return nil, fmt.Errorf("prepare audio: --pipeline is required (fbank or stft)")
	}
	if err := only("fbank", "frames", "norm-mean", "norm-std", "no-norm"); err != nil {
		return nil, err
	}
	if err := only("stft", "start", "seed"); err != nil {
		return nil, err
	}
	switch o.pipeline {
	case "fbank":
		if o.frames < 0 {
			return nil, fmt.Errorf("prepare audio: --frames %d must be ≥ 0", o.frames)
		}
		if o.rate < 0 || o.rate > audio.MaxRate {
			return nil, fmt.Errorf("prepare audio: --rate %d: want 0 (keep each file's rate) to %d Hz", o.rate, audio.MaxRate)
		}
		if !o.noNorm && o.normStd == 0 {
			return nil, fmt.Errorf("prepare audio: --norm-std must not be 0")
		}
		p.fbank = audio.KineticsSounds()
		p.fbank.Frames, p.fbank.Normalize, p.fbank.Mean, p.fbank.Std = o.frames, !o.noNorm, o.normMean, o.normStd
		p.rate = o.rate
	case "stft":
		if o.rate != 0 && o.rate != audio.VGGSoundRate {
			return nil, fmt.Errorf("prepare audio: the stft pipeline runs at %d Hz, not --rate %d", audio.VGGSoundRate, o.rate)
		}
		p.rate = audio.VGGSoundRate
		if fs.Changed("start") {
			if o.start < 0 || math.IsNaN(o.start) {
				return nil, fmt.Errorf("prepare audio: --start %g must be ≥ 0 seconds", o.start)
			}
			p.start = int(math.Round(o.start * audio.VGGSoundRate))
		}
	default:
		return nil, fmt.Errorf("prepare audio: unknown --pipeline %q (want fbank or stft)", o.pipeline)
	}
	if o.format != "npy" && o.format != "pt" {
		return nil, fmt.Errorf("prepare audio: unknown --format %q (want npy or pt)", o.format)
	}
	switch o.resampler {
	case "kaiser-best":
		p.filter = audio.KaiserBest()
	case "hann":
		p.filter = audio.HannSinc()
	default:
		return nil, fmt.Errorf("prepare audio: unknown --resampler %q (want kaiser-best or hann)", o.resampler)
	}
	if o.channel != "mean" {
		c, err := strconv.Atoi(o.channel)
		if err != nil || c < 0 {
			return nil, fmt.Errorf("prepare audio: --channel %q: want mean or a channel index ≥ 0", o.channel)
		}
		p.channel = c
	}
	if o.jobs < 1 {
		return nil, fmt.Errorf("prepare audio: -j %d must be ≥ 1", o.jobs)
	}
	if err := machine.CheckThreads("prepare audio: -j", o.jobs, false); err != nil {
		return nil, err
	}
	return p, nil
}

// features turns one WAV file into its feature matrix; name keys the random
// window start.
func (p *audioPrep) features(path, name string) (*audio.Matrix, error) {
	clip, err := audio.ReadWAV(path)
	if err != nil {
		return nil, err
	}
	wave := clip.Mono()
	if p.channel >= 0 {
		if p.channel >= len(clip.Channels) {
			return nil, fmt.Errorf("%s: --channel %d, but the file has %d channel(s)", path, p.channel, len(clip.Channels))
		}
		wave = clip.Channels[p.channel]
	}
	rate := clip.Rate
	if p.rate > 0 && p.rate != rate {
		if wave, err = audio.Resample(wave, rate, p.rate, p.filter); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		rate = p.rate
	}
	var m *audio.Matrix
	if p.pipeline == "fbank" {
		m, err = p.fbank.Run(wave, rate)
	} else {
		start := p.start
		if start < 0 {
			start = audio.VGGSoundRandomStart(p.seed, name)
		}
		m, err = audio.VGGSoundSpectrogram(wave, rate, start)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for i, v := range m.Data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("%s: the features hold %v at row %d, column %d; nothing was written", path, v, i/m.Cols, i%m.Cols)
		}
	}
	return m, nil
}

func (p *audioPrep) write(path string, m *audio.Matrix) error {
	return atomicfile.Write(path, func(w io.Writer) error {
		if p.format == "pt" {
			return tensorfile.WriteTorch(w, []int{m.Rows, m.Cols}, m.Data)
		}
		return tensorfile.WriteNPY(w, []int{m.Rows, m.Cols}, m.Data)
	})
}

// audioJob is one WAV file and the feature file it becomes.
type audioJob struct {
	in, out string
	name    string // the output's path below --out without extension
}

// audioJobs lists the WAV files named by in and where their features go.
func audioJobs(in, out, ext string) ([]audioJob, error) {
	fi, err := os.Stat(in)
	if err != nil {
		return nil, fmt.Errorf("prepare audio: --in: %w", err)
	}
	var jobs []audioJob
	add := func(path, name string) {
		jobs = append(jobs, audioJob{in: path, out: filepath.Join(out, name+"."+ext), name: filepath.ToSlash(name)})
	}
	switch {
	case fi.IsDir():
		err = filepath.WalkDir(in, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && strings.EqualFold(filepath.Ext(path), ".wav") {
				rel, err := filepath.Rel(in, path)
				if err != nil {
					return err
				}
				add(path, strings.TrimSuffix(rel, filepath.Ext(rel)))
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("prepare audio: --in %s: %w", in, err)
		}
		if len(jobs) == 0 {
			return nil, fmt.Errorf("prepare audio: --in %s: no .wav files in the folder", in)
		}
	case strings.EqualFold(filepath.Ext(in), ".wav"):
		add(in, stem(in))
	default:
		paths, err := readList(in)
		if err != nil {
			return nil, err
		}
		seen := map[string]string{}
		for _, p := range paths {
			if prev, dup := seen[stem(p)]; dup {
				return nil, fmt.Errorf("prepare audio: list %s: %s and %s would both write %s.%s", in, prev, p, stem(p), ext)
			}
			seen[stem(p)] = p
			add(p, stem(p))
		}
	}
	return jobs, nil
}

func stem(path string) string {
	base := filepath.Base(path)
	return strings.TrimSuffix(base, filepath.Ext(base))
}

// readList reads a list of WAV paths, one per line; blank lines and lines
// starting with # are skipped and relative paths are taken from the list's
// folder.
func readList(list string) ([]string, error) {
	f, err := os.Open(list)
	if err != nil {
		return nil, fmt.Errorf("prepare audio: --in: %w", err)
	}
	defer f.Close()
	var paths []string
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		p := strings.TrimSpace(sc.Text())
		if p == "" || strings.HasPrefix(p, "#") {
			continue
		}
		if !strings.EqualFold(filepath.Ext(p), ".wav") {
			return nil, fmt.Errorf("prepare audio: list %s line %d: %q is not a .wav path", list, line, p)
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(list), p)
		}
		paths = append(paths, p)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("prepare audio: list %s: %w", list, err)
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("prepare audio: list %s names no .wav files", list)
	}
	return paths, nil
}

// runAudioJobs processes the files on a pool of workers, prints a summary
// and returns an error listing every file that failed.
func runAudioJobs(jobs []audioJob, prep *audioPrep, workers int, force bool, stdout io.Writer) error {
	errs := make([]error, len(jobs))
	skipped := make([]bool, len(jobs))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, len(jobs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				j := jobs[i]
				if _, err := os.Stat(j.out); err == nil && !force {
					skipped[i] = true
					continue
				}
				m, err := prep.features(j.in, j.name)
				if err == nil {
					if err = os.MkdirAll(filepath.Dir(j.out), 0o755); err == nil {
						err = prep.write(j.out, m)
					}
				}
				errs[i] = err
			}
		}()
	}
	for i := range jobs {
		next <- i
	}
	close(next)
	wg.Wait()
	var failed []string
	nSkipped := 0
	for i, err := range errs {
		switch {
		case err != nil:
			failed = append(failed, "  "+err.Error())
		case skipped[i]:
			nSkipped++
		}
	}
	sort.Strings(failed)
	done := len(jobs) - nSkipped - len(failed)
	fmt.Fprintf(stdout, "prepare audio: %d of %d files written (%s, .%s), %d skipped (already there; --force rewrites), %d failed\n",
		done, len(jobs), prep.pipeline, prep.format, nSkipped, len(failed))
	if len(failed) > 0 {
		return errors.New("prepare audio: " + strconv.Itoa(len(failed)) + " file(s) failed:\n" + strings.Join(failed, "\n"))
	}
	return nil
}

const (
	prepareUsage = "bmc prepare audio --pipeline fbank|stft --in DIR|FILE.wav|LIST --out DIR [flags]"

	prepareExample = `bmc prepare audio --pipeline fbank --in ks/train-wav --out ks/train_spec
  bmc prepare audio --pipeline fbank --frames 0 --no-norm --format pt --in cremad/AudioWAV --out cremad/audio
  bmc prepare audio --pipeline stft --in vggsound/wav --out vggsound/audio_train --seed 1 -j 2
  bmc prepare audio --pipeline stft --start 2.5 --in test-clips.txt --out vggsound/audio_test`
)
