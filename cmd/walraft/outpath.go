package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	if err := canWriteIn(dir); err != nil {
		return fmt.Errorf("%s %s: cannot write: %v", flag, dir, err)
	}
	return nil
}

// canWriteIn checks that a file can be created in the directory dir (and
// removes it), reporting the system's reason, without the path, if not.
func canWriteIn(dir string) error {
	f, err := os.CreateTemp(dir, ".walraft-check-*")
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return err
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	return nil
}

// checkOutDirLater checks that dir is a writable directory or can be
// created, without creating it: for a directory written only if something
// goes wrong (campaign -out, whose default is inside the repository), so
// that a campaign with no failure leaves no empty directory behind, while
// a bad path still fails before the campaign starts.
func checkOutDirLater(flag, dir string) error {
	if dir == "" {
		return nil
	}
	p := filepath.Clean(dir)
	for {
		fi, err := os.Stat(p)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("%s %s: %s is not a directory", flag, dir, p)
			}
			if err := canWriteIn(p); err != nil {
				return fmt.Errorf("%s %s: cannot write in %s: %v", flag, dir, p, err)
			}
			return nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s %s: %v", flag, dir, err)
		}
		parent := filepath.Dir(p)
		if parent == p {
			return fmt.Errorf("%s %s: no existing parent directory", flag, dir)
		}
		p = parent
	}
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
