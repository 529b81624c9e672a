package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The deploy/ manifests cannot rot: their structure is checked (matrix and
// completions equal SHARDS, the shard index is the one each platform
// provides) and their shard and merge command lines run locally, exactly as
// written, for 3 shards of a small campaign, then merge.

type ghWorkflow struct {
	Env  map[string]string `yaml:"env"`
	Jobs map[string]struct {
		Needs    any `yaml:"needs"`
		Strategy struct {
			Matrix map[string][]int `yaml:"matrix"`
		} `yaml:"strategy"`
		Steps []struct {
			Name string `yaml:"name"`
			Run  string `yaml:"run"`
		} `yaml:"steps"`
	} `yaml:"jobs"`
}

type k8sDoc struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		CompletionMode string `yaml:"completionMode"`
		Completions    int    `yaml:"completions"`
		Parallelism    int    `yaml:"parallelism"`
		Template       struct {
			Spec struct {
				Containers []struct {
					Env []struct {
						Name  string `yaml:"name"`
						Value string `yaml:"value"`
					} `yaml:"env"`
					Command      []string `yaml:"command"`
					Args         []string `yaml:"args"`
					VolumeMounts []struct {
						MountPath string `yaml:"mountPath"`
					} `yaml:"volumeMounts"`
				} `yaml:"containers"`
				Volumes []struct {
					PersistentVolumeClaim struct {
						ClaimName string `yaml:"claimName"`
					} `yaml:"persistentVolumeClaim"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

func readYAMLDocs[T any](t *testing.T, path string) []T {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	var out []T
	for {
		var d T
		if err := dec.Decode(&d); err != nil {
			if err.Error() == "EOF" {
				return out
			}
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, d)
	}
}

// deployEnv is a directory with `walraft` (this test binary, which is the
// CLI when WALRAFT_TEST_CLI is set) and the environment to run the
// manifests' commands in: 3 shards of a small campaign.
func deployEnv(t *testing.T) (dir string, env []string) {
	t.Helper()
	dir = t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(exe, filepath.Join(dir, "walraft")); err != nil {
		t.Fatal(err)
	}
	env = append(os.Environ(), "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"),
		"SHARDS=3", "SEEDS=6", "SCENARIO=calm", envCLI+"=1")
	return dir, env
}

// sh runs one command line with sh -c and returns its output and exit code.
func sh(t *testing.T, dir string, env []string, line string) (string, int) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", line)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("%s: %v", line, err)
		}
		code = ee.ExitCode()
	}
	return string(out), code
}

func TestDeployGitHubActions(t *testing.T) {
	useFake(t, "basic")
	docs := readYAMLDocs[ghWorkflow](t, filepath.Join("..", "..", "deploy", "github", "walraft-campaign.yml"))
	if len(docs) != 1 {
		t.Fatalf("%d documents", len(docs))
	}
	w := docs[0]
	shards, err := strconv.Atoi(w.Env["SHARDS"])
	if err != nil {
		t.Fatalf("env SHARDS %q: %v", w.Env["SHARDS"], err)
	}
	matrix := w.Jobs["shard"].Strategy.Matrix["shard"]
	want := make([]int, shards)
	for i := range want {
		want[i] = i
	}
	if !slices.Equal(matrix, want) {
		t.Fatalf("matrix shard %v, want %v (SHARDS=%d)", matrix, want, shards)
	}
	if w.Jobs["merge"].Needs != "shard" {
		t.Fatalf("merge needs %v, want shard", w.Jobs["merge"].Needs)
	}
	step := func(job, name string) string {
		for _, s := range w.Jobs[job].Steps {
			if s.Name == name {
				return s.Run
			}
		}
		t.Fatalf("job %s has no step %q", job, name)
		return ""
	}
	shardCmd, mergeCmd := step("shard", "campaign shard"), step("merge", "merge")
	if !strings.Contains(shardCmd, "${{ matrix.shard }}/$SHARDS") {
		t.Fatalf("the shard step does not shard by the matrix: %s", shardCmd)
	}
	dir, env := deployEnv(t)
	for i := 0; i < 3; i++ {
		line := strings.ReplaceAll(shardCmd, "${{ matrix.shard }}", strconv.Itoa(i))
		if out, code := sh(t, dir, env, line); code != 0 {
			t.Fatalf("shard %d: exit %d\n%s\n%s", i, code, line, out)
		}
	}
	out, code := sh(t, dir, env, mergeCmd)
	if code != 0 || !strings.Contains(out, "merged 3 summaries (shards 0/3 1/3 2/3)") || !strings.Contains(out, "PASS") {
		t.Fatalf("merge: exit %d\n%s", code, out)
	}
	// A violation in a shard is exit 1 for its campaign, but the step
	// passes (the summary is uploaded) and merge fails.
	for i := 0; i < 3; i++ {
		line := strings.ReplaceAll(shardCmd, "${{ matrix.shard }}", strconv.Itoa(i))
		line = strings.Replace(line, "campaign ", "campaign -variant "+testVariant+" ", 1)
		if out, code := sh(t, dir, env, line); code != 0 {
			t.Fatalf("failing shard %d step: exit %d\n%s", i, code, out)
		}
	}
	if out, code := sh(t, dir, env, mergeCmd); code != exitFail || !strings.Contains(out, "FAIL") {
		t.Fatalf("merge after failing shards: exit %d, want 1\n%s", code, out)
	}
}

func TestDeployKubernetes(t *testing.T) {
	useFake(t, "basic")
	docs := readYAMLDocs[k8sDoc](t, filepath.Join("..", "..", "deploy", "kubernetes", "walraft-campaign.yaml"))
	merge := readYAMLDocs[k8sDoc](t, filepath.Join("..", "..", "deploy", "kubernetes", "walraft-merge.yaml"))
	var job, pvc *k8sDoc
	for i := range docs {
		switch docs[i].Kind {
		case "Job":
			job = &docs[i]
		case "PersistentVolumeClaim":
			pvc = &docs[i]
		}
	}
	if job == nil || pvc == nil || len(merge) != 1 || merge[0].Kind != "Job" {
		t.Fatal("want a PersistentVolumeClaim and an Indexed Job, and a merge Job")
	}
	c := job.Spec.Template.Spec.Containers[0]
	shards := 0
	for _, e := range c.Env {
		if e.Name == "SHARDS" {
			shards, _ = strconv.Atoi(e.Value)
		}
	}
	switch {
	case job.Spec.CompletionMode != "Indexed":
		t.Fatalf("completionMode %q", job.Spec.CompletionMode)
	case job.Spec.Completions != shards || job.Spec.Parallelism != shards:
		t.Fatalf("completions %d parallelism %d, SHARDS %d", job.Spec.Completions, job.Spec.Parallelism, shards)
	case !slices.Equal(c.Command, []string{"/bin/sh", "-c"}) || len(c.Args) != 1:
		t.Fatalf("command %v args %v", c.Command, c.Args)
	case !strings.Contains(c.Args[0], "$JOB_COMPLETION_INDEX/$SHARDS"):
		t.Fatalf("the shard is not JOB_COMPLETION_INDEX: %s", c.Args[0])
	}
	for _, d := range []*k8sDoc{job, &merge[0]} {
		s := d.Spec.Template.Spec
		if len(s.Volumes) != 1 || s.Volumes[0].PersistentVolumeClaim.ClaimName != pvc.Metadata.Name ||
			len(s.Containers[0].VolumeMounts) != 1 || s.Containers[0].VolumeMounts[0].MountPath != "/summaries" {
			t.Fatalf("job %s does not mount the claim %s at /summaries", d.Metadata.Name, pvc.Metadata.Name)
		}
	}
	dir, env := deployEnv(t)
	vol := filepath.Join(dir, "summaries")
	if err := os.Mkdir(vol, 0o755); err != nil {
		t.Fatal(err)
	}
	local := func(line string) string { return strings.ReplaceAll(line, "/summaries", vol) }
	for i := 0; i < 3; i++ {
		if out, code := sh(t, dir, append(env, "JOB_COMPLETION_INDEX="+strconv.Itoa(i)), local(c.Args[0])); code != 0 {
			t.Fatalf("index %d: exit %d\n%s", i, code, out)
		}
	}
	out, code := sh(t, dir, env, local(merge[0].Spec.Template.Spec.Containers[0].Args[0]))
	if code != 0 || !strings.Contains(out, "merged 3 summaries (shards 0/3 1/3 2/3)") || !strings.Contains(out, "PASS") {
		t.Fatalf("merge: exit %d\n%s", code, out)
	}
}
