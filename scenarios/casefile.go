package scenarios

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// CaseVersion is the case file format this code writes and the only one it
// reads. Bump it when a field changes meaning or a required field is added;
// older case files then fail to load with a clear message instead of
// replaying something else.
const CaseVersion = 1

// MaxCaseFileSize bounds what ReadCase and DecodeCase accept, so a wrong or
// hostile file cannot make the CLI allocate without bound. A large fault
// schedule with long violation details stays far below it.
const MaxCaseFileSize = 8 << 20

// Bounds on the options a case file may ask for. Option drawing stays far
// below them; they exist so a hand-edited case cannot make a replay allocate
// or run without bound.
const (
	maxCaseClients  = 10000
	maxCasePhase    = time.Hour
	maxCaseFaults   = 100000
	maxCaseTopics   = 64
	maxCasePartsPer = 1024
)

// ErrBadCase is wrapped by every error about a case file's content: not
// JSON, truncated, unknown or missing fields, a version this code cannot
// read, or options and schedule that cannot run.
var ErrBadCase = errors.New("bad case file")

// Case is a replayable failing run: everything needed to run it again
// exactly, plus what it showed the first time. The full Options are stored
// (not only the seed) so a case replays the same run even after the way
// options are drawn from a seed changes.
type Case struct {
	// Version is CaseVersion.
	Version int `json:"version"`
	// Scenario, Seed and Variant repeat Options.Scenario, Options.Seed and
	// the variant name ("" = the correct system) for people and tools
	// reading the file; DecodeCase checks they agree with Options.
	Scenario string `json:"scenario"`
	Seed     uint64 `json:"seed"`
	Variant  string `json:"variant"`
	// Commit is the git commit of the build that wrote the case, or
	// "unknown".
	Commit string `json:"commit"`
	// TraceHash is the run's trace hash as 16 hex digits; a replay on the
	// same code reproduces it, a different hash means the code changed.
	TraceHash string `json:"trace_hash"`
	// Options are every knob of the run.
	Options Options `json:"options"`
	// Schedule is the fault schedule the run applied.
	Schedule Schedule `json:"schedule"`
	// Violations are the invariants the run broke.
	Violations []CaseViolation `json:"violations"`
	// Note says where the case came from (e.g. "minimized from X: faults
	// 12 -> 2"); free text, may be empty.
	Note string `json:"note,omitempty"`
	// Expect is the verdict a replay must give, for the regression corpus
	// (testdata/cases): ExpectHold (every invariant holds: a schedule from
	// a public failure report the system must survive), or the name of an
	// invariant the run must violate. Empty (older case files, and cases a
	// campaign writes) means the recorded violations' invariants.
	Expect string `json:"expect,omitempty"`
	// CaughtBy names known-bad variants (Variants) that this case's
	// options and schedule catch: run with each, some invariant must
	// break. A regression-corpus schedule that must hold lists them to
	// show it matters (it would fail if the system had that bug); the
	// corpus test checks it.
	CaughtBy []string `json:"caught_by,omitempty"`
}

// ExpectHold is Case.Expect for a case every invariant must hold in.
const ExpectHold = "hold"

// ExpectedInvariants returns the invariants a replay of the case must
// violate: none for ExpectHold, the named one, or the recorded ones.
func (c *Case) ExpectedInvariants() []string {
	switch c.Expect {
	case ExpectHold:
		return nil
	case "":
		return c.Invariants()
	}
	return []string{c.Expect}
}

// CaseViolation is one broken invariant as recorded in a case file.
type CaseViolation struct {
	// Invariant names the invariant ("S1".."S8", "L1", "L2", ...).
	Invariant string `json:"invariant"`
	// Detail is the checker's readable explanation.
	Detail string `json:"detail"`
	// Time is the simulated time the violation was detected at (0 when the
	// checker could not place it in time).
	Time time.Duration `json:"time"`
}

// FormatTraceHash renders a trace hash as it appears in case files and the
// CLI's JSON output: 16 lower-case hex digits. A string rather than a JSON
// number because many JSON readers lose precision above 2^53.
func FormatTraceHash(h uint64) string { return fmt.Sprintf("%016x", h) }

// ParseTraceHash parses FormatTraceHash's output.
func ParseTraceHash(s string) (uint64, error) {
	if len(s) != 16 {
		return 0, fmt.Errorf("trace hash %q: want 16 hex digits", s)
	}
	h, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("trace hash %q: want 16 hex digits", s)
	}
	return h, nil
}

// Invariants returns the distinct invariant names of the case's violations,
// sorted.
func (c *Case) Invariants() []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range c.Violations {
		if !seen[v.Invariant] {
			seen[v.Invariant] = true
			out = append(out, v.Invariant)
		}
	}
	sort.Strings(out)
	return out
}

// FileName is the case's conventional file name:
// <scenario>-<variant or "correct">-seed<N>.json.
func (c *Case) FileName() string {
	v := c.Variant
	if v == "" {
		v = "correct"
	}
	return fmt.Sprintf("%s-%s-seed%d.json", safeName(c.Scenario), safeName(v), c.Seed)
}

// safeName keeps a name usable as part of a file name.
func safeName(s string) string {
	if s == "" {
		return "none"
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, s)
}

// Validate checks that the case can be replayed: a supported version,
// header fields that agree with the options, options and a schedule that
// can run, and at least one violation.
func (c *Case) Validate() error {
	if err := c.validateRun(); err != nil {
		return err
	}
	switch {
	case c.Commit == "":
		return fmt.Errorf("%w: empty commit (write \"unknown\" when it is not known)", ErrBadCase)
	case len(c.Violations) == 0 && c.Expect != ExpectHold:
		return fmt.Errorf("%w: no violations: a case records a failing run (or says \"expect\": %q)", ErrBadCase, ExpectHold)
	}
	if _, err := ParseTraceHash(c.TraceHash); err != nil {
		return fmt.Errorf("%w: %v", ErrBadCase, err)
	}
	return nil
}

// ValidateSchedule checks a schedule file (see DecodeScheduleFile): what
// Validate checks, except the fields that record a run, which may be
// empty: commit, trace hash (checked when given) and violations.
func (c *Case) ValidateSchedule() error {
	if err := c.validateRun(); err != nil {
		return err
	}
	if c.TraceHash != "" {
		if _, err := ParseTraceHash(c.TraceHash); err != nil {
			return fmt.Errorf("%w: %v", ErrBadCase, err)
		}
	}
	return nil
}

// validateRun checks what a run of the case needs: a supported version,
// header fields that agree with the options, a known scenario and variant,
// an expected verdict that names something, options and a schedule that
// can run.
func (c *Case) validateRun() error {
	if c.Version != CaseVersion {
		if c.Version > CaseVersion {
			return fmt.Errorf("%w: version %d is newer than this walraft reads (%d): update walraft", ErrBadCase, c.Version, CaseVersion)
		}
		return fmt.Errorf("%w: version %d is not supported (this walraft reads version %d)", ErrBadCase, c.Version, CaseVersion)
	}
	o := c.Options
	switch {
	case c.Scenario != o.Scenario:
		return fmt.Errorf("%w: scenario %q disagrees with options.Scenario %q", ErrBadCase, c.Scenario, o.Scenario)
	case c.Seed != o.Seed:
		return fmt.Errorf("%w: seed %d disagrees with options.Seed %d", ErrBadCase, c.Seed, o.Seed)
	case c.Variant != o.Variant:
		return fmt.Errorf("%w: variant %q disagrees with options.Variant %q", ErrBadCase, c.Variant, o.Variant)
	case c.Expect != "" && c.Expect != ExpectHold && !slices.Contains(CheckedInvariants, c.Expect):
		return fmt.Errorf("%w: expect %q is neither %q nor an invariant (%v)", ErrBadCase, c.Expect, ExpectHold, CheckedInvariants)
	}
	if _, err := LookupVariant(c.Variant); err != nil {
		return fmt.Errorf("%w: %v", ErrBadCase, err)
	}
	for _, v := range c.CaughtBy {
		if _, err := LookupVariant(v); err != nil || v == "" {
			return fmt.Errorf("%w: caught_by: %v", ErrBadCase, err)
		}
	}
	if err := KnownScenario(c.Scenario); err != nil {
		return fmt.Errorf("%w: %v", ErrBadCase, err)
	}
	for i, v := range c.Violations {
		if v.Invariant == "" {
			return fmt.Errorf("%w: violations[%d] has an empty invariant", ErrBadCase, i)
		}
	}
	if err := validateCaseOptions(o); err != nil {
		return fmt.Errorf("%w: options: %v", ErrBadCase, err)
	}
	if len(c.Schedule) > maxCaseFaults {
		return fmt.Errorf("%w: schedule has %d faults (at most %d)", ErrBadCase, len(c.Schedule), maxCaseFaults)
	}
	if err := c.Schedule.Validate(o.Nodes); err != nil {
		return fmt.Errorf("%w: %v", ErrBadCase, err)
	}
	for i, f := range c.Schedule {
		if err := f.canTakeEffect(o.SafetyDuration); err != nil {
			return fmt.Errorf("%w: schedule[%d]: fault %s: %v", ErrBadCase, i, strings.TrimSpace(f.String()), err)
		}
	}
	return nil
}

// validateCaseOptions runs Options.Validate plus the bounds that keep a
// hand-edited case from running without bound.
func validateCaseOptions(o Options) error {
	if err := o.Validate(); err != nil {
		return err
	}
	if err := o.Disk.Validate(); err != nil {
		return err
	}
	switch {
	case o.Producers == 0:
		return fmt.Errorf("no producers: nothing would be written, so nothing could be lost (a case needs Producers >= 1)")
	case o.Producers > maxCaseClients || o.Consumers > maxCaseClients:
		return fmt.Errorf("%d producers and %d consumers (at most %d each)", o.Producers, o.Consumers, maxCaseClients)
	case o.SafetyDuration > maxCasePhase || o.LivenessDuration > maxCasePhase:
		return fmt.Errorf("phases %v and %v (at most %v each)", o.SafetyDuration, o.LivenessDuration, maxCasePhase)
	case len(o.Topics) > maxCaseTopics:
		return fmt.Errorf("%d topics (at most %d)", len(o.Topics), maxCaseTopics)
	case o.MsgMax > 1<<20 || o.MaxBatchRecs > 10000:
		return fmt.Errorf("records of up to %d bytes, %d per request (at most 1 MiB, 10000)", o.MsgMax, o.MaxBatchRecs)
	case o.AcksWeights[0] < 0 || o.AcksWeights[1] < 0 || o.AcksWeights[2] < 0:
		return fmt.Errorf("negative acks weight")
	case o.AcksTimeout <= 0 || o.RequestTimeout <= 0:
		return fmt.Errorf("timeouts must be positive")
	case o.ThinkMin < 0 || o.ThinkMax < o.ThinkMin || o.ClientLatency < 0 || o.FetchEvery < 0 ||
		o.NetLatency < 0 || o.NetJitter < 0 || o.FaultEvery < 0 || o.FaultStallMax < 0 || o.FaultStallMax > maxCasePhase:
		return fmt.Errorf("negative or inverted duration")
	}
	for _, t := range o.Topics {
		if t.Name == "" || t.Partitions < 1 || t.Partitions > maxCasePartsPer {
			return fmt.Errorf("topic %q with %d partitions (want a name and 1..%d)", t.Name, t.Partitions, maxCasePartsPer)
		}
	}
	if err := o.Knobs.validate(o); err != nil {
		return err
	}
	for k, w := range o.FaultWeights {
		if !slices.Contains(faultKinds, k) || w < 0 {
			return fmt.Errorf("fault weight %q: %d (unknown kind or negative weight)", k, w)
		}
	}
	return checkOfferedLoad(o)
}

// MarshalCase encodes a valid case as indented JSON with a final newline.
func MarshalCase(c *Case) ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode case: %w", err)
	}
	return append(b, '\n'), nil
}

// DecodeCase decodes and validates a case file strictly: exactly one JSON
// object, no unknown fields, every field present (fields the format marks
// omitempty excepted), a supported version, and options and a schedule that
// can run. Every error wraps ErrBadCase.
func DecodeCase(b []byte) (*Case, error) { return decodeCase(b, false) }

// scheduleFileOptional are the case fields a schedule file may leave out:
// they record a run (which build, what it hashed to, what it broke), and a
// hand-written schedule has not run yet.
var scheduleFileOptional = []string{"commit", "trace_hash", "violations"}

// DecodeScheduleFile decodes a schedule file: hand-written options and a
// fault schedule for `walraft run -schedule`, in the case-file format
// without the fields that record a run (scheduleFileOptional: commit,
// trace_hash, violations may be absent or empty). Everything else is as
// strict as DecodeCase: no unknown fields, every other field present, a
// known scenario and variant, options and a schedule (targets, triggers,
// values in range) that can run, and an expect field, if any, that names
// "hold" or an invariant. Every error wraps ErrBadCase. A case file a
// campaign wrote is also a valid schedule file.
func DecodeScheduleFile(b []byte) (*Case, error) { return decodeCase(b, true) }

// decodeCase is DecodeCase, or DecodeScheduleFile when schedule is set.
func decodeCase(b []byte, schedule bool) (*Case, error) {
	if len(b) > MaxCaseFileSize {
		return nil, fmt.Errorf("%w: %d bytes (at most %d)", ErrBadCase, len(b), MaxCaseFileSize)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, fmt.Errorf("%w: empty file", ErrBadCase)
	}
	// The version is checked first and on its own, so a file from a newer
	// format says so instead of complaining about the fields it added.
	var head struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrBadCase, describeJSONError(b, err))
	}
	if head.Version == nil {
		return nil, fmt.Errorf("%w: missing field \"version\" (is this a walraft case file?)", ErrBadCase)
	}
	if *head.Version != CaseVersion {
		return nil, (&Case{Version: *head.Version}).Validate()
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var c Case
	if err := dec.Decode(&c); err != nil {
		if strings.Contains(err.Error(), "unknown field") {
			var tree any
			if json.Unmarshal(b, &tree) == nil {
				if msg := unknownField(tree, reflect.TypeOf(Case{}), ""); msg != "" {
					return nil, fmt.Errorf("%w: %s", ErrBadCase, msg)
				}
			}
		}
		return nil, fmt.Errorf("%w: %s", ErrBadCase, describeJSONError(b, err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the case object", ErrBadCase)
	}
	// encoding/json leaves a missing field at its zero value, which for a
	// case silently means something else (seed 0, no stall...): walk the
	// generic tree to insist every field is there.
	var tree any
	if err := json.Unmarshal(b, &tree); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrBadCase, describeJSONError(b, err))
	}
	if obj, ok := tree.(map[string]any); ok && schedule {
		for _, k := range scheduleFileOptional {
			if _, present := obj[k]; !present {
				obj[k] = nil // null: requireFields accepts it, the zero value stays
			}
		}
	}
	if err := requireFields(tree, reflect.TypeOf(Case{}), ""); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCase, err)
	}
	validate := c.Validate
	if schedule {
		validate = c.ValidateSchedule
	}
	if err := validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// describeJSONError turns encoding/json's errors into a message that says
// what is wrong with the file.
func describeJSONError(b []byte, err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || (errors.As(err, &syn) && syn.Offset >= int64(len(bytes.TrimRight(b, " \t\r\n")))):
		return fmt.Sprintf("truncated: the JSON ends early after %d bytes", len(b))
	case errors.As(err, &syn) && strings.Contains(syn.Error(), "after top-level value"):
		return fmt.Sprintf("data after the case object at byte %d", syn.Offset)
	case errors.As(err, &syn):
		return fmt.Sprintf("not valid JSON at byte %d: %v", syn.Offset, err)
	case errors.As(err, &typ) && typ.Field == "":
		return fmt.Sprintf("the file holds a JSON %s where a case object is expected", typ.Value)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q: %s where %s is expected", typ.Field, typ.Value, typ.Type)
	}
	return err.Error()
}

// requireFields reports the first field that the JSON value v lacks,
// walking the Go type t the way encoding/json maps it: every exported
// struct field without omitempty must be present; slice elements, array
// elements and map values are checked against their element type.
func requireFields(v any, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if v == nil {
		return nil // null: encoding/json leaves the zero value; Validate judges it
	}
	switch t.Kind() {
	case reflect.Struct:
		if t == reflect.TypeOf(time.Time{}) {
			return nil
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("field %s: want an object", displayPath(path))
		}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, omit := jsonName(f)
			if name == "-" {
				continue
			}
			sub := joinPath(path, name)
			fv, present := obj[name]
			if !present {
				if omit {
					continue
				}
				return fmt.Errorf("missing field %s", displayPath(sub))
			}
			if err := requireFields(fv, f.Type, sub); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		arr, ok := v.([]any)
		if !ok {
			return nil // the decoder reports the type error with its own words
		}
		for i, e := range arr {
			if err := requireFields(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if err := requireFields(obj[k], t.Elem(), joinPath(path, k)); err != nil {
				return err
			}
		}
	}
	return nil
}

// jsonName returns the JSON key of a struct field and whether it is
// omitempty.
func jsonName(f reflect.StructField) (string, bool) {
	tag := f.Tag.Get("json")
	if tag == "" {
		return f.Name, false
	}
	name, opts, _ := strings.Cut(tag, ",")
	if name == "" {
		name = f.Name
	}
	return name, strings.Contains(","+opts+",", ",omitempty,") || strings.Contains(","+opts+",", ",omitzero,")
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func displayPath(p string) string { return strconv.Quote(p) }

// ReadCase reads and decodes a case file (see DecodeCase). A hand-written
// schedule file (DecodeScheduleFile: no commit, trace hash or violations
// yet) is read too, so that replay, minimize, report and go test take what
// run -schedule takes; its commit reads "unknown". Errors name the file
// and are DecodeCase's; content errors wrap ErrBadCase.
func ReadCase(path string) (*Case, error) {
	b, err := readBounded(path, "case")
	if err != nil {
		return nil, err
	}
	c, err := DecodeCase(b)
	if err != nil {
		sc, serr := DecodeScheduleFile(b)
		if serr != nil {
			return nil, fmt.Errorf("case %s: %w", path, err)
		}
		if sc.Commit == "" {
			sc.Commit = "unknown"
		}
		return sc, nil
	}
	return c, nil
}

// readBounded reads a case or schedule file (what names it in errors) of
// at most MaxCaseFileSize bytes.
func readBounded(path, what string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > MaxCaseFileSize {
		// Say the file's real size, not the bytes read up to the limit.
		return nil, fmt.Errorf("%s %s: %w: %d bytes (at most %d)", what, path, ErrBadCase, fi.Size(), MaxCaseFileSize)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxCaseFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w", what, path, err)
	}
	return b, nil
}

// ReadScheduleFile reads and decodes a schedule file (see
// DecodeScheduleFile). Errors name the file; content errors wrap
// ErrBadCase.
func ReadScheduleFile(path string) (*Case, error) {
	b, err := readBounded(path, "schedule")
	if err != nil {
		return nil, err
	}
	c, err := DecodeScheduleFile(b)
	if err != nil {
		return nil, fmt.Errorf("schedule %s: %w", path, err)
	}
	return c, nil
}

// WriteCase encodes c and writes it to path atomically (a temporary file in
// the same directory, then a rename), creating the directory if needed.
func WriteCase(path string, c *Case) error {
	b, err := MarshalCase(c)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write case: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".case-*.json")
	if err != nil {
		return fmt.Errorf("write case: %w", err)
	}
	_, werr := tmp.Write(b)
	cerr := tmp.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp.Name(), 0o644)
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write case %s: %w", path, werr)
	}
	return nil
}

// unknownField finds the first field of the JSON value v that the Go type
// t does not have (encoding/json matches names without regard to case) and
// says where it is and, if a known name is close, which was meant: for
// example `schedule[0]: unknown field "targte" (did you mean "target"?)`.
// It returns "" when every field is known.
func unknownField(v any, t reflect.Type, path string) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok || t == reflect.TypeOf(time.Time{}) {
			return ""
		}
		fields := map[string]reflect.StructField{}
		var names []string
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			if name, _ := jsonName(f); name != "-" {
				fields[strings.ToLower(name)] = f
				names = append(names, name)
			}
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			f, ok := fields[strings.ToLower(k)]
			if !ok {
				where := ""
				if path != "" {
					where = path + ": "
				}
				msg := fmt.Sprintf("%sunknown field %q", where, k)
				if near := nearestName(k, names); near != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", near)
				}
				return msg
			}
			if m := unknownField(obj[k], f.Type, joinPath(path, k)); m != "" {
				return m
			}
		}
	case reflect.Slice, reflect.Array:
		arr, _ := v.([]any)
		for i, e := range arr {
			if m := unknownField(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); m != "" {
				return m
			}
		}
	case reflect.Map:
		obj, _ := v.(map[string]any)
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if m := unknownField(obj[k], t.Elem(), joinPath(path, k)); m != "" {
				return m
			}
		}
	}
	return ""
}

// nearestName returns the name of names closest to s by edit distance
// (case ignored), if it is at most 2 edits away, else "".
func nearestName(s string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if d := editDistance(strings.ToLower(s), strings.ToLower(n)); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
