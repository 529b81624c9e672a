package main

import (
	"errors"
	"fmt"
	"os"
)

// checkOutFile checks, before a run, that path can be written: its
// directory exists and the file can be created (a file that did not exist
// is removed again). A run that takes minutes should not fail at its end
// because of a typo in -o.
func checkOutFile(flag, path string) error {
	if path == "" {
		return nil
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("%s %s: is a directory", flag, path)
	}
	_, statErr := os.Stat(path)
	existed := statErr == nil
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("%s %s: cannot write: %v", flag, path, err)
	}
	f.Close()
	if !existed {
		os.Remove(path)
	}
	return nil
}

// ensureOutDir creates dir (and its parents) if it is missing and checks it
// is a writable directory, before a run.
func ensureOutDir(flag, dir string) error {
	if dir == "" {
		return nil
	}
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return fmt.Errorf("%s %s: not a directory", flag, dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("%s %s: cannot create: %v", flag, dir, err)
	}
	f, err := os.CreateTemp(dir, ".walraft-check-*")
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("%s %s: cannot write: %v", flag, dir, err)
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	return nil
}

// outFlag is one output flag of a command: a file, or a directory (created
// when missing).
type outFlag struct {
	flag, path string
	dir        bool
}

// checkOutPaths checks every output path of a command before it runs and
// reports the first bad one on one line: exit 2 (-1: all good).
func checkOutPaths(st stdio, cmd string, paths []outFlag) int {
	for _, p := range paths {
		check := checkOutFile
		if p.dir {
			check = ensureOutDir
		}
		if err := check(p.flag, p.path); err != nil {
			return usageErr(st, cmd, "%v", err)
		}
	}
	return -1
}
