package systemd

import (
	"bufio"
	"bytes"
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// repoRoot is the module root: tests run in the package directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found at %s: %v", root, err)
	}
	return root
}

// needTool returns the path of a tool, or skips the test saying what to
// install. `make test` installs the tools as root (scripts/ensure-tools).
func needTool(t *testing.T, tool, debPackage string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin"} {
			if st, err := os.Stat(filepath.Join(dir, tool)); err == nil && !st.IsDir() {
				return filepath.Join(dir, tool)
			}
		}
		t.Skipf("SKIP: %s not found: install the Debian package %s (apt-get install %s) to run this test",
			tool, debPackage, debPackage)
	}
	return p
}

// run runs a command and fails the test with its output if it fails. The
// timeout only stops a hung tool from hanging the whole run.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	out, err := runErr(t, dir, env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func runErr(t *testing.T, dir string, env []string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = env
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return out.String(), err
}

// unitFile is a systemd unit parsed the simple way systemd does for these
// files: sections, KEY=VALUE lines, # and ; comments, repeated keys kept in
// order. Line continuations are not used in our unit and are rejected.
type unitFile map[string]map[string][]string

func parseUnit(t *testing.T, path string) unitFile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
			continue
		case strings.HasSuffix(line, "\\"):
			t.Fatalf("%s:%d: line continuation not supported by this parser", path, n)
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || section == "" {
			t.Fatalf("%s:%d: not KEY=VALUE in a section: %q", path, n, line)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		u[section][k] = append(u[section][k], v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// last is the effective value of a single-valued key (the last assignment wins).
func (u unitFile) last(section, key string) (string, bool) {
	vs := u[section][key]
	if len(vs) == 0 {
		return "", false
	}
	return vs[len(vs)-1], true
}

// configVar is one variable the configuration code reads, taken from the tags
// of the Config struct in cmd/edge-agent/config.go.
type configVar struct {
	Name     string
	Default  string
	HasDef   bool
	Required bool
	Cred     string // systemd credential name; also means NAME_FILE exists
	Group    string
}

// configVars parses cmd/edge-agent/config.go (the source, not the package:
// this package cannot import main) and returns its variables in order. ok is
// false when the file or the struct does not exist yet.
func configVars(t *testing.T) (vars []configVar, ok bool) {
	t.Helper()
	path := filepath.Join(repoRoot(t), "cmd", "edge-agent", "config.go")
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, false
	}
	f, err := parser.ParseFile(token.NewFileSet(), path, src, 0)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	var st *ast.StructType
	ast.Inspect(f, func(n ast.Node) bool {
		if ts, isType := n.(*ast.TypeSpec); isType && ts.Name.Name == "Config" {
			st, _ = ts.Type.(*ast.StructType)
		}
		return st == nil
	})
	if st == nil {
		return nil, false
	}
	group := ""
	for _, fld := range st.Fields.List {
		if fld.Tag == nil {
			continue
		}
		raw, err := strconv.Unquote(fld.Tag.Value)
		if err != nil {
			t.Fatalf("%s: bad tag %s", path, fld.Tag.Value)
		}
		tag := reflect.StructTag(raw)
		name := tag.Get("envconfig")
		if name == "" {
			continue
		}
		if g := tag.Get("group"); g != "" {
			group = g
		}
		def, hasDef := tag.Lookup("default")
		vars = append(vars, configVar{
			Name: name, Default: def, HasDef: hasDef,
			Required: tag.Get("required") == "true",
			Cred:     tag.Get("cred"), Group: group,
		})
	}
	return vars, len(vars) > 0
}
