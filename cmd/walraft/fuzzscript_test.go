package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// .ci/fuzz.sh runs every fuzz target of the module, each with a short
// -fuzzminimizetime (Go's default of 60 s per new input made the README's
// fuzz commands look stalled): a new Fuzz function must be added to it.
func TestFuzzScriptCoversEveryTarget(t *testing.T) {
	root := filepath.Join("..", "..")
	script, err := os.ReadFile(filepath.Join(root, ".ci", "fuzz.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(script), "-fuzzminimizetime") {
		t.Fatal(".ci/fuzz.sh does not bound -fuzzminimizetime")
	}
	fuzz := regexp.MustCompile(`(?m)^func (Fuzz\w+)\(`)
	n := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		pkg := "./" + filepath.ToSlash(filepath.Dir(must(filepath.Rel(root, path))))
		for _, m := range fuzz.FindAllStringSubmatch(string(b), -1) {
			n++
			if !strings.Contains(string(script), "run "+pkg+" "+m[1]+"\n") {
				t.Errorf("fuzz target %s in %s is not in .ci/fuzz.sh (add: run %s %s)", m[1], pkg, pkg, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 5 {
		t.Fatalf("found only %d fuzz targets", n)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
