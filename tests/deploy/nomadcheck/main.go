// nomadcheck checks a Nomad job file without Nomad (whose source is not under an
// open-source licence since 1.7, so its jobspec parser is not used here):
//
//   - the file is parsed with HashiCorp's HCL 2 parser (github.com/hashicorp/hcl/v2),
//     the parser Nomad's jobspec2 uses;
//   - every block and argument name, and every block's labels, is checked against
//     the schema implied by the `hcl:"..."` tags of Nomad's own API structs
//     (github.com/hashicorp/nomad/api: Job, TaskGroup, Task, Service, ...), which
//     is what jobspec2 decodes into; duration arguments must parse as durations;
//   - expressions are evaluated with the file's variable defaults (var.*), so a
//     reference to an undeclared variable or a type error is caught;
//   - ferry's own rules: kill_signal SIGTERM and kill_timeout above the
//     shutdown.timeout_ms of the rendered worker.conf template; service checks
//     on /healthz and /readyz over the port mapped to 9464.
//
// Opaque blocks (the driver's config, env, meta) are checked for syntax and
// evaluation only.
//
// With -templates DIR, every template whose destination is a *.conf file is
// written to DIR, so tests/deploy/validate can hand it to the real program.
//
// Usage: nomadcheck [-templates DIR] FILE.nomad.hcl...
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	nomad "github.com/hashicorp/nomad/api"
	"github.com/zclconf/go-cty/cty"
)

var (
	nerr        int
	templateDir = flag.String("templates", "", "write each template rendering a *.conf file here (for `ferry-worker --config`)")
)

func fail(rng hcl.Range, format string, args ...any) {
	nerr++
	fmt.Fprintf(os.Stderr, "nomadcheck: %s: %s\n", rng.String(), fmt.Sprintf(format, args...))
}

type field struct {
	name, kind string // kind: attr, optional, block, label
	typ        reflect.Type
}

func fieldsOf(t reflect.Type) map[string]field {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	out := map[string]field{}
	if t.Kind() != reflect.Struct {
		return out
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, ok := f.Tag.Lookup("hcl")
		if !ok {
			continue
		}
		parts := strings.Split(tag, ",")
		kind := "attr"
		if len(parts) > 1 {
			kind = parts[1]
		}
		out[parts[0]+"\x00"+kind] = field{parts[0], kind, f.Type}
	}
	return out
}

func lookup(fs map[string]field, name string, kinds ...string) (field, bool) {
	for _, k := range kinds {
		if f, ok := fs[name+"\x00"+k]; ok {
			return f, true
		}
	}
	return field{}, false
}

func labels(fs map[string]field) int {
	n := 0
	for _, f := range fs {
		if f.kind == "label" {
			n++
		}
	}
	return n
}

var durationType = reflect.TypeOf(time.Duration(0))

func isDuration(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t == durationType
}

type checker struct {
	ctx *hcl.EvalContext
}

func (c *checker) eval(e hcl.Expression) (cty.Value, bool) {
	v, diags := e.Value(c.ctx)
	for _, d := range diags {
		fail(diagRange(d), "%s: %s", d.Summary, d.Detail)
	}
	return v, !diags.HasErrors()
}

// body checks a block body against the struct type it decodes into.
func (c *checker) body(b *hclsyntax.Body, t reflect.Type, where string) {
	fs := fieldsOf(t)
	for name, a := range b.Attributes {
		f, ok := lookup(fs, name, "optional", "attr")
		if !ok {
			fail(a.SrcRange, "%s: unsupported argument %q", where, name)
			continue
		}
		v, ok := c.eval(a.Expr)
		if ok && isDuration(f.typ) && v.Type() == cty.String && v.IsKnown() {
			if _, err := time.ParseDuration(v.AsString()); err != nil {
				fail(a.SrcRange, "%s: %s: %v", where, name, err)
			}
		}
	}
	for _, blk := range b.Blocks {
		f, ok := lookup(fs, blk.Type, "block")
		if !ok {
			fail(blk.TypeRange, "%s: unsupported block %q", where, blk.Type)
			continue
		}
		et := f.typ
		for et.Kind() == reflect.Pointer || et.Kind() == reflect.Slice {
			et = et.Elem()
		}
		if et.Kind() == reflect.Map { // config, env, meta: free-form
			for _, a := range blk.Body.Attributes {
				c.eval(a.Expr)
			}
			continue
		}
		sub := fieldsOf(et)
		if want := labels(sub); want != len(blk.Labels) {
			fail(blk.TypeRange, "%s: block %q takes %d label(s), has %d", where, blk.Type, want, len(blk.Labels))
		}
		c.body(blk.Body, et, where+"."+blk.Type)
	}
}

func attrString(c *checker, b *hclsyntax.Body, name string) string {
	a, ok := b.Attributes[name]
	if !ok {
		return ""
	}
	v, ok := c.eval(a.Expr)
	if !ok || !v.IsKnown() || v.Type() != cty.String {
		return ""
	}
	return v.AsString()
}

func blocks(b *hclsyntax.Body, typ string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, blk := range b.Blocks {
		if blk.Type == typ {
			out = append(out, blk)
		}
	}
	return out
}

var shutdownRe = regexp.MustCompile(`(?m)^\s*shutdown\.timeout_ms\s*=\s*(\d+)\s*$`)

// ferryRules: what ferry needs from a worker task.
func (c *checker) ferryRules(job *hclsyntax.Block) {
	for _, g := range blocks(job.Body, "group") {
		ports := map[string]bool{}
		for _, n := range blocks(g.Body, "network") {
			for _, p := range blocks(n.Body, "port") {
				if to, ok := p.Body.Attributes["to"]; ok {
					if v, ok := c.eval(to.Expr); ok && v.Type() == cty.Number && v.AsBigFloat().String() == "9464" {
						ports[p.Labels[0]] = true
					}
				}
			}
		}
		paths := map[string]bool{}
		for _, s := range blocks(g.Body, "service") {
			if !ports[attrString(c, s.Body, "port")] {
				fail(s.TypeRange, "service port %q is not a port mapped to 9464", attrString(c, s.Body, "port"))
			}
			for _, ck := range blocks(s.Body, "check") {
				paths[attrString(c, ck.Body, "path")] = true
			}
		}
		if !paths["/healthz"] || !paths["/readyz"] {
			fail(g.TypeRange, "group %s: service checks on /healthz and /readyz expected", g.Labels[0])
		}
		if _, ok := g.Body.Attributes["count"]; !ok {
			fail(g.TypeRange, "group %s: no count", g.Labels[0])
		}
		for _, t := range blocks(g.Body, "task") {
			if sig := attrString(c, t.Body, "kill_signal"); sig != "" && sig != "SIGTERM" {
				fail(t.TypeRange, "task %s: kill_signal %s: ferry drains on SIGTERM", t.Labels[0], sig)
			}
			kt, _ := time.ParseDuration(attrString(c, t.Body, "kill_timeout"))
			shutdown := 30 * time.Second
			for _, tpl := range blocks(t.Body, "template") {
				data := attrString(c, tpl.Body, "data")
				if dest := attrString(c, tpl.Body, "destination"); *templateDir != "" && strings.HasSuffix(dest, ".conf") {
					out := filepath.Join(*templateDir, filepath.Base(dest))
					if err := os.WriteFile(out, []byte(data), 0o644); err != nil {
						fail(tpl.TypeRange, "%v", err)
					}
				}
				if m := shutdownRe.FindStringSubmatch(data); m != nil {
					ms, _ := strconv.Atoi(m[1])
					shutdown = time.Duration(ms) * time.Millisecond
				}
			}
			if kt <= shutdown {
				fail(t.TypeRange, "task %s: kill_timeout %v must exceed shutdown.timeout_ms (%v)", t.Labels[0], kt, shutdown)
			}
		}
	}
}

func check(path string) {
	src, err := os.ReadFile(path)
	if err != nil {
		nerr++
		fmt.Fprintf(os.Stderr, "nomadcheck: %v\n", err)
		return
	}
	f, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
	for _, d := range diags {
		fail(diagRange(d), "%s: %s", d.Summary, d.Detail)
	}
	if diags.HasErrors() {
		return
	}
	b := f.Body.(*hclsyntax.Body)
	c := &checker{ctx: &hcl.EvalContext{Variables: map[string]cty.Value{}}}
	// Variables: their defaults become var.*; the runtime NOMAD_* variables
	// used in interpolations are not HCL variables (Nomad leaves "${NOMAD_...}"
	// for the client), so a placeholder value for them is fine.
	vars := map[string]cty.Value{}
	for _, v := range blocks(b, "variable") {
		if len(v.Labels) != 1 {
			fail(v.TypeRange, "variable takes one label")
			continue
		}
		for name := range v.Body.Attributes {
			if name != "type" && name != "default" && name != "description" && name != "sensitive" {
				fail(v.Body.Attributes[name].SrcRange, "variable %s: unsupported argument %q", v.Labels[0], name)
			}
		}
		if d, ok := v.Body.Attributes["default"]; ok {
			val, _ := c.eval(d.Expr)
			vars[v.Labels[0]] = val
		} else {
			fail(v.TypeRange, "variable %s has no default", v.Labels[0])
		}
	}
	c.ctx.Variables["var"] = cty.ObjectVal(vars)
	for _, name := range []string{"NOMAD_JOB_NAME", "NOMAD_ALLOC_INDEX", "NOMAD_SHORT_ALLOC_ID", "NOMAD_TASK_DIR", "NOMAD_SECRETS_DIR", "NOMAD_ALLOC_ID"} {
		c.ctx.Variables[name] = cty.StringVal(name)
	}
	jobs := 0
	for _, a := range b.Attributes {
		fail(a.SrcRange, "unexpected top-level argument %q", a.Name)
	}
	for _, blk := range b.Blocks {
		switch blk.Type {
		case "variable", "locals":
		case "job":
			jobs++
			if len(blk.Labels) != 1 {
				fail(blk.TypeRange, "job takes one label")
			}
			c.body(blk.Body, reflect.TypeOf(nomad.Job{}), "job")
			c.ferryRules(blk)
		default:
			fail(blk.TypeRange, "unexpected top-level block %q", blk.Type)
		}
	}
	if jobs != 1 {
		fail(hcl.Range{Filename: path}, "want exactly one job block, have %d", jobs)
	}
}

func main() {
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: nomadcheck [-templates DIR] FILE...")
		os.Exit(2)
	}
	for _, p := range flag.Args() {
		check(p)
	}
	fmt.Printf("nomadcheck: %d file(s), %d errors\n", flag.NArg(), nerr)
	if nerr > 0 {
		os.Exit(1)
	}
}

func diagRange(d *hcl.Diagnostic) hcl.Range {
	if d.Subject != nil {
		return *d.Subject
	}
	return hcl.Range{}
}
