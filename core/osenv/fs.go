package osenv

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"walraft/core/env"
)

// ErrBadName is returned for a file name the FS cannot map to a path: empty,
// absolute, with an empty, "." or ".." component, with a NUL byte, or one
// that collides with a directory the FS made for other names (a name that
// is a prefix-directory of another, such as "a" next to "a/b").
var ErrBadName = errors.New("bad file name")

// NewFS returns an env.FS that keeps its files under dir, creating dir if
// needed. A name's '/' separators map to subdirectories, created on demand
// (and made durable by the next SyncDir, like the file itself).
//
// File.Sync runs fsync on a worker goroutine and posts done(err) to loop;
// syncs of one handle complete in issue order, and syncs queued while an
// fsync runs share the next one (group commit). SyncDir fsyncs every
// directory touched (an entry created or removed) since the last SyncDir.
// Once a file's write, truncate or fsync fails, every later Sync of that
// handle fails too, and once a directory fsync fails every later SyncDir
// fails: after a failed fsync the kernel may have dropped the dirty pages,
// so a later "successful" fsync would prove nothing.
//
// Empty subdirectories are left in place when their last file is removed.
func NewFS(dir string, loop *Loop) (env.FS, error) {
	if loop == nil {
		return nil, errors.New("osenv: NewFS with nil loop")
	}
	if dir == "" {
		return nil, errors.New("osenv: NewFS with empty dir")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("osenv: NewFS %q: %w", dir, err)
	}
	st, err := os.Stat(abs)
	switch {
	case err == nil && !st.IsDir():
		return nil, fmt.Errorf("osenv: NewFS %q: not a directory", abs)
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return nil, fmt.Errorf("osenv: NewFS %q: %w", abs, err)
		}
		// Make the new root itself durable now: SyncDir only covers
		// directories below it.
		if err := fsyncDir(filepath.Dir(abs)); err != nil {
			return nil, fmt.Errorf("osenv: NewFS %q: %w: %w", abs, env.ErrIO, err)
		}
	case err != nil:
		return nil, fmt.Errorf("osenv: NewFS %q: %w", abs, err)
	}
	return &osFS{
		root:    abs,
		loop:    loop,
		dirs:    map[string]bool{"": true},
		dirty:   map[string]struct{}{},
		handles: map[string]map[*file]struct{}{},
	}, nil
}

var (
	_ env.FS   = (*osFS)(nil)
	_ env.File = (*file)(nil)
)

type osFS struct {
	root string
	loop *Loop

	mu      sync.Mutex
	dirs    map[string]bool               // slash-relative dirs known to exist ("" is root)
	dirty   map[string]struct{}           // dirs with entries changed since the last SyncDir
	handles map[string]map[*file]struct{} // open handles by name, invalidated by Remove
	dq      []dirSyncReq                  // SyncDir requests waiting for the dir worker
	dRun    bool                          // the dir worker is running
	dErr    error                         // sticky: a directory fsync failed
	gate    *SyncGate                     // holds fsyncs (NewFSWithGate); nil: none
}

type dirSyncReq struct {
	dirs []string
	done func(error)
}

// checkName validates a name and returns its OS path.
func (s *osFS) checkName(op, name string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("osenv: %s %q: %w: %s", op, name, ErrBadName, why)
	}
	switch {
	case name == "":
		return bad("empty")
	case strings.HasPrefix(name, "/"):
		return bad("absolute")
	case strings.IndexByte(name, 0) >= 0:
		return bad("contains NUL")
	}
	for _, c := range strings.Split(name, "/") {
		if c == "" || c == "." || c == ".." {
			return bad("empty, \".\" or \"..\" component")
		}
	}
	return filepath.Join(s.root, filepath.FromSlash(name)), nil
}

// ensureParents creates the missing directories above name and marks each
// directory whose entries changed as dirty. Called with s.mu held.
func (s *osFS) ensureParents(op, name string) error {
	dir := path.Dir(name)
	if dir == "." {
		return nil
	}
	var missing []string
	for d := dir; d != "." && !s.dirs[d]; d = path.Dir(d) {
		missing = append(missing, d)
	}
	for i := len(missing) - 1; i >= 0; i-- { // top-down
		d := missing[i]
		p := filepath.Join(s.root, filepath.FromSlash(d))
		err := os.Mkdir(p, 0o755)
		if errors.Is(err, fs.ErrExist) {
			st, serr := os.Stat(p)
			if serr == nil && st.IsDir() {
				s.dirs[d] = true
				continue
			}
			return fmt.Errorf("osenv: %s %q: %w: %q is a file", op, name, ErrBadName, d)
		}
		if err != nil {
			if errors.Is(err, syscall.ENOTDIR) {
				return fmt.Errorf("osenv: %s %q: %w: a parent of %q is a file", op, name, ErrBadName, d)
			}
			return fmt.Errorf("osenv: %s %q: mkdir %q: %w: %w", op, name, d, env.ErrIO, err)
		}
		s.dirs[d] = true
		s.dirty[parentDir(d)] = struct{}{}
	}
	return nil
}

// parentDir is path.Dir with "" for the root.
func parentDir(name string) string {
	d := path.Dir(name)
	if d == "." {
		return ""
	}
	return d
}

// Create implements env.FS.
func (s *osFS) Create(name string) (env.File, error) {
	p, err := s.checkName("create", name)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.ensureParents("create", name); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o644)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			if st, serr := os.Lstat(p); serr == nil && st.IsDir() {
				return nil, fmt.Errorf("osenv: create %q: %w: it is a directory holding other names", name, ErrBadName)
			}
			return nil, fmt.Errorf("osenv: create %q: %w", name, env.ErrExist)
		}
		return nil, fmt.Errorf("osenv: create %q: %w", name, mapErr(err))
	}
	s.dirty[parentDir(name)] = struct{}{}
	return s.register(name, f, 0), nil
}

// Open implements env.FS.
func (s *osFS) Open(name string) (env.File, error) {
	p, err := s.checkName("open", name)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.OpenFile(p, os.O_RDWR|os.O_APPEND, 0)
	if err != nil {
		if errors.Is(err, syscall.EISDIR) {
			return nil, fmt.Errorf("osenv: open %q: %w (it is a directory)", name, env.ErrNotExist)
		}
		return nil, fmt.Errorf("osenv: open %q: %w", name, mapErr(err))
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("osenv: open %q: stat: %w", name, mapErr(err))
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("osenv: open %q: %w (not a regular file)", name, env.ErrNotExist)
	}
	return s.register(name, f, st.Size()), nil
}

// register records an open handle. Called with s.mu held.
func (s *osFS) register(name string, f *os.File, size int64) *file {
	h := &file{fs: s, name: name, f: f, size: size}
	m := s.handles[name]
	if m == nil {
		m = map[*file]struct{}{}
		s.handles[name] = m
	}
	m[h] = struct{}{}
	return h
}

func (s *osFS) unregister(h *file) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.handles[h.name]; m != nil {
		delete(m, h)
		if len(m) == 0 {
			delete(s.handles, h.name)
		}
	}
}

// List implements env.FS.
func (s *osFS) List(prefix string) ([]string, error) {
	var names []string
	err := filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("osenv: list %q: %w: %w", prefix, env.ErrIO, err)
	}
	// WalkDir orders per directory, which is not the order of the full
	// names ("a/b" walks before "a-c" though '-' < '/').
	slices.Sort(names)
	return names, nil
}

// Remove implements env.FS.
func (s *osFS) Remove(name string) error {
	p, err := s.checkName("remove", name)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := os.Lstat(p)
	if err != nil {
		return fmt.Errorf("osenv: remove %q: %w", name, mapErr(err))
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("osenv: remove %q: %w (not a regular file)", name, env.ErrNotExist)
	}
	if err := os.Remove(p); err != nil {
		return fmt.Errorf("osenv: remove %q: %w", name, mapErr(err))
	}
	s.dirty[parentDir(name)] = struct{}{}
	for h := range s.handles[name] {
		h.invalidate("removed")
	}
	delete(s.handles, name)
	return nil
}

// SyncDir implements env.FS.
func (s *osFS) SyncDir(done func(error)) {
	if done == nil {
		panic("osenv: SyncDir with nil done")
	}
	s.mu.Lock()
	dirs := make([]string, 0, len(s.dirty))
	for d := range s.dirty {
		dirs = append(dirs, d)
	}
	clear(s.dirty)
	slices.Sort(dirs)
	// Even with nothing dirty the request goes through the worker, so it
	// completes after every SyncDir issued before it.
	s.dq = append(s.dq, dirSyncReq{dirs: dirs, done: done})
	if !s.dRun {
		s.dRun = true
		go s.dirWorker()
	}
	s.mu.Unlock()
}

// dirWorker fsyncs queued directory sets until the queue is empty. Requests
// queued together share one fsync per directory.
func (s *osFS) dirWorker() {
	for {
		s.mu.Lock()
		batch := s.dq
		s.dq = nil
		if len(batch) == 0 {
			s.dRun = false
			s.mu.Unlock()
			return
		}
		err := s.dErr
		s.mu.Unlock()

		if err == nil {
			s.gate.wait()
			seen := map[string]bool{}
			for _, r := range batch {
				for _, d := range r.dirs {
					if seen[d] {
						continue
					}
					seen[d] = true
					if e := fsyncDir(filepath.Join(s.root, filepath.FromSlash(d))); e != nil {
						err = fmt.Errorf("osenv: syncdir %q: %w: %w", d, env.ErrIO, e)
						break
					}
				}
				if err != nil {
					break
				}
			}
			if err != nil {
				s.mu.Lock()
				s.dErr = err
				s.mu.Unlock()
			}
		}
		for _, r := range batch {
			done := r.done
			s.loop.Post(func() { done(err) })
		}
	}
}

func fsyncDir(p string) error {
	d, err := os.Open(p)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// mapErr wraps an OS error with the env sentinel it means.
func mapErr(err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("%w: %w", env.ErrNotExist, err)
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("%w: %w", env.ErrExist, err)
	case errors.Is(err, fs.ErrClosed):
		return fmt.Errorf("%w: %w", env.ErrClosed, err)
	default:
		return fmt.Errorf("%w: %w", env.ErrIO, err)
	}
}

// file is an open env.File.
//
// The loop-side fields (size, closed, why) are guarded by mu as well, so a
// handle may be used from any goroutine; the sync queue is shared with the
// handle's worker goroutine, which runs only while syncs are queued.
type file struct {
	fs   *osFS
	name string
	f    *os.File

	mu       sync.Mutex
	size     int64
	closed   bool
	why      string    // why the handle is closed: "closed" or "removed"
	queue    []syncReq // syncs waiting for the worker
	running  bool      // the worker is running
	fdClosed bool      // f.Close has been called
	failed   error     // sticky: a write, truncate or fsync failed
}

type syncReq struct {
	done func(error)
	err  error // non-nil: complete with this error, no fsync needed
}

// Name implements env.File.
func (h *file) Name() string { return h.name }

// Size implements env.File. It is this handle's view: the size it opened
// with, moved by its own writes and truncates.
func (h *file) Size() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.size
}

func (h *file) closedErr(op string) error {
	return fmt.Errorf("osenv: %s %q: %w (%s)", op, h.name, env.ErrClosed, h.why)
}

// ReadAt implements env.File.
func (h *file) ReadAt(p []byte, off int64) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return 0, h.closedErr("read")
	}
	if off < 0 {
		return 0, fmt.Errorf("osenv: read %q: negative offset %d", h.name, off)
	}
	n, err := h.f.ReadAt(p, off)
	if err != nil && err != io.EOF {
		return n, fmt.Errorf("osenv: read %q at %d: %w", h.name, off, mapErr(err))
	}
	return n, err
}

// Write implements env.File.
func (h *file) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return 0, h.closedErr("write")
	}
	if len(p) == 0 {
		return 0, nil
	}
	n, err := h.f.Write(p) // O_APPEND: always at the end
	h.size += int64(n)
	if err != nil {
		err = fmt.Errorf("osenv: write %q: %w: %w", h.name, env.ErrIO, err)
		h.fail(err)
		return n, err
	}
	return n, nil
}

// WriteAt implements env.File. The handle is opened O_APPEND (where Linux
// ignores a pwrite's offset), so the overwrite goes through a second
// descriptor of the same file, opened for it alone; an fsync of either
// descriptor writes the file's dirty pages.
func (h *file) WriteAt(p []byte, off int64) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return 0, h.closedErr("writeat")
	}
	if off < 0 || off+int64(len(p)) > h.size {
		return 0, fmt.Errorf("osenv: writeat %q [%d, %d): range must be inside [0, %d]", h.name, off, off+int64(len(p)), h.size)
	}
	if len(p) == 0 {
		return 0, nil
	}
	g, err := os.OpenFile(h.f.Name(), os.O_WRONLY, 0)
	if err != nil {
		err = fmt.Errorf("osenv: writeat %q: %w: %w", h.name, env.ErrIO, err)
		h.fail(err)
		return 0, err
	}
	n, err := g.WriteAt(p, off)
	if cerr := g.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		err = fmt.Errorf("osenv: writeat %q: %w: %w", h.name, env.ErrIO, err)
		h.fail(err)
		return n, err
	}
	return n, nil
}

// Truncate implements env.File.
func (h *file) Truncate(size int64) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return h.closedErr("truncate")
	}
	if size < 0 || size > h.size {
		return fmt.Errorf("osenv: truncate %q to %d: size must be in [0, %d]", h.name, size, h.size)
	}
	if err := h.f.Truncate(size); err != nil {
		err = fmt.Errorf("osenv: truncate %q to %d: %w: %w", h.name, size, env.ErrIO, err)
		h.fail(err)
		return err
	}
	h.size = size
	return nil
}

// fail records the first failure; every later Sync reports it. Called with
// h.mu held.
func (h *file) fail(err error) {
	if h.failed == nil {
		h.failed = err
	}
}

// Sync implements env.File.
func (h *file) Sync(done func(error)) {
	if done == nil {
		panic("osenv: File.Sync with nil done")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	r := syncReq{done: done}
	if h.closed {
		r.err = h.closedErr("sync")
	}
	// Even an immediate error goes through the worker's queue so it
	// completes after every sync issued before it.
	h.queue = append(h.queue, r)
	if !h.running {
		h.running = true
		go h.worker()
	}
}

// worker runs fsyncs until the queue is empty, then closes the fd if Close
// asked for it meanwhile. One fsync serves every request queued before it
// started, and completions are posted in queue order.
func (h *file) worker() {
	for {
		h.mu.Lock()
		batch := h.queue
		h.queue = nil
		if len(batch) == 0 {
			h.running = false
			if h.closed && !h.fdClosed {
				h.fdClosed = true
				h.f.Close() // nobody is left to report the error to
			}
			h.mu.Unlock()
			return
		}
		err := h.failed
		need := false
		for _, r := range batch {
			need = need || r.err == nil
		}
		h.mu.Unlock()

		if need && err == nil {
			h.fs.gate.wait()
			if e := h.f.Sync(); e != nil {
				err = fmt.Errorf("osenv: sync %q: %w: %w", h.name, env.ErrIO, e)
				h.mu.Lock()
				h.fail(err)
				h.mu.Unlock()
			}
		}
		for _, r := range batch {
			done, e := r.done, r.err
			if e == nil {
				e = err
			}
			h.fs.loop.Post(func() { done(e) })
		}
	}
}

// Close implements env.File. Pending syncs still complete; the descriptor
// is closed after the last of them.
func (h *file) Close() error {
	h.mu.Lock()
	if h.closed {
		err := h.closedErr("close")
		h.mu.Unlock()
		return err
	}
	err := h.closeLocked("closed")
	h.mu.Unlock()
	h.fs.unregister(h)
	return err
}

// invalidate closes the handle because its file was removed. Called with
// the FS lock held (so it must not call unregister).
func (h *file) invalidate(why string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.closeLocked(why)
	}
}

func (h *file) closeLocked(why string) error {
	h.closed = true
	h.why = why
	if h.running {
		return nil // the worker closes the fd when its queue drains
	}
	h.fdClosed = true
	if err := h.f.Close(); err != nil {
		return fmt.Errorf("osenv: close %q: %w", h.name, mapErr(err))
	}
	return nil
}
