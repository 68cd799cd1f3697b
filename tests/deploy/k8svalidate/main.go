// k8svalidate checks ferry's Kubernetes manifests with the real libraries:
//
//   - every kustomization directory given is rendered with kustomize's own
//     library (sigs.k8s.io/kustomize/api/krusty), as `kubectl apply -k` would;
//   - every rendered object, and every plain YAML file given, is decoded in
//     strict mode into the real Go API types (k8s.io/api for core, apps, policy,
//     autoscaling; prometheus-operator's monitoring/v1 for ServiceMonitor,
//     PodMonitor and PrometheusRule): an unknown or misspelt field, a
//     duplicate field, a wrong type or an unknown apiVersion/kind is an error;
//   - every Deployment's pod template is evaluated against the "restricted" Pod
//     Security Standard with k8s.io/pod-security-admission (the admission
//     plugin's own checks);
//   - every PromQL expression in a PrometheusRule, and with -dashboard in a
//     Grafana dashboard, is parsed with Prometheus's own parser, and the metric
//     names they select can be written out (-metrics-out).
//
// Objects of API groups it has no Go types for (keda.sh) are passed through
// and written with the rest to -o, for tests/deploy/check_crd.py, which
// validates them against the CRD's OpenAPI schema.
//
// Usage: k8svalidate [-o rendered.yaml] PATH...   (PATH: a directory holding a
// kustomization.yaml, or a YAML file)
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/prometheus/promql/parser"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	psaapi "k8s.io/pod-security-admission/api"
	psapolicy "k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// Groups whose objects are validated elsewhere (against their CRD schema).
var promParser = parser.NewParser(parser.Options{})

var passThroughGroups = map[string]bool{"keda.sh": true}

type validator struct {
	decoder runtime.Decoder
	scheme  *runtime.Scheme
	errors  int
	objects int
	exprs   int
	metrics map[string]bool
	psa     psapolicy.Evaluator
	out     bytes.Buffer
}

func newValidator() *validator {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme,
		autoscalingv2.AddToScheme, rbacv1.AddToScheme, monitoringv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	cf := serializer.NewCodecFactory(s, serializer.EnableStrict)
	ev, err := psapolicy.NewEvaluator(psapolicy.DefaultChecks(), nil)
	if err != nil {
		panic(err)
	}
	return &validator{decoder: cf.UniversalDeserializer(), scheme: s, metrics: map[string]bool{}, psa: ev}
}

func (v *validator) fail(where string, format string, args ...any) {
	v.errors++
	fmt.Fprintf(os.Stderr, "k8svalidate: %s: %s\n", where, fmt.Sprintf(format, args...))
}

// object validates one YAML document (already split).
func (v *validator) object(where string, doc []byte) {
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(doc, &meta); err != nil {
		v.fail(where, "not YAML: %v", err)
		return
	}
	if meta.APIVersion == "" && meta.Kind == "" {
		return // empty document
	}
	id := fmt.Sprintf("%s %s/%s", where, meta.Kind, meta.Metadata.Name)
	if meta.Metadata.Name == "" {
		v.fail(id, "metadata.name is empty")
	}
	v.objects++
	v.out.WriteString("---\n")
	v.out.Write(bytes.TrimLeft(doc, "-\n"))
	if !bytes.HasSuffix(doc, []byte("\n")) {
		v.out.WriteString("\n")
	}
	gv, err := schema.ParseGroupVersion(meta.APIVersion)
	if err != nil {
		v.fail(id, "apiVersion %q: %v", meta.APIVersion, err)
		return
	}
	if passThroughGroups[gv.Group] {
		return
	}
	obj, _, err := v.decoder.Decode(doc, nil, nil)
	if err != nil {
		v.fail(id, "%v", err)
		return
	}
	if d, ok := obj.(*appsv1.Deployment); ok {
		v.podSecurity(id, &d.Spec.Template.ObjectMeta, &d.Spec.Template.Spec)
	}
	if rule, ok := obj.(*monitoringv1.PrometheusRule); ok {
		for _, g := range rule.Spec.Groups {
			for _, r := range g.Rules {
				name := r.Alert + r.Record
				v.promql(fmt.Sprintf("%s rule %s/%s", id, g.Name, name), r.Expr.String())
			}
		}
	}
}

// podSecurity evaluates a pod template against the "restricted" Pod Security
// Standard with the checks the API server's admission plugin runs.
func (v *validator) podSecurity(where string, meta *metav1.ObjectMeta, spec *corev1.PodSpec) {
	for _, r := range v.psa.EvaluatePod(psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()}, meta, spec) {
		if !r.Allowed {
			v.fail(where, "violates the restricted Pod Security Standard: %s: %s", r.ForbiddenReason, r.ForbiddenDetail)
		}
	}
}

// promql parses one expression with Prometheus's parser and records the
// metric names it selects.
func (v *validator) promql(where, expr string) {
	v.exprs++
	e, err := promParser.ParseExpr(expr)
	if err != nil {
		v.fail(where, "PromQL: %v", err)
		return
	}
	parser.Inspect(e, func(n parser.Node, path []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok || vs.Name == "" {
			return nil
		}
		v.use(vs.Name, "")
		for _, m := range vs.LabelMatchers {
			if m.Name != "__name__" {
				v.use(vs.Name, m.Name)
			}
		}
		// Labels an enclosing aggregation groups by must exist on the series.
		for _, anc := range path {
			if agg, ok := anc.(*parser.AggregateExpr); ok && !agg.Without {
				for _, l := range agg.Grouping {
					v.use(vs.Name, l)
				}
			}
		}
		return nil
	})
}

// use records that an expression selects metric name, and relies on its label
// (label "" = the name alone).
func (v *validator) use(name, label string) {
	if label == "" {
		v.metrics[name] = true
	} else {
		v.metrics[name+" "+label] = true
	}
}

// grafanaVar matches Grafana's template variables: $__rate_interval, $var, ${var}, [[var]].
var grafanaVar = regexp.MustCompile(`\$__[a-z_]+|\$\{[A-Za-z0-9_:]+\}|\$[A-Za-z_][A-Za-z0-9_]*|\[\[[A-Za-z0-9_]+\]\]`)

// dashboard parses every PromQL target of a Grafana dashboard (Grafana's
// variables replaced by a duration or a plain label value first).
func (v *validator) dashboard(path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		v.fail(path, "%v", err)
		return
	}
	var d any
	if err := json.Unmarshal(data, &d); err != nil {
		v.fail(path, "not JSON: %v", err)
		return
	}
	n := 0
	var walk func(x any, where string)
	walk = func(x any, where string) {
		switch t := x.(type) {
		case map[string]any:
			if title, ok := t["title"].(string); ok {
				where = title
			}
			if expr, ok := t["expr"].(string); ok {
				n++
				expr = grafanaVar.ReplaceAllStringFunc(expr, func(m string) string {
					if strings.HasPrefix(m, "$__") {
						return "5m"
					}
					return "x"
				})
				v.promql(fmt.Sprintf("%s panel %q", path, where), expr)
			}
			for _, c := range t {
				walk(c, where)
			}
		case []any:
			for _, c := range t {
				walk(c, where)
			}
		}
	}
	walk(d, "")
	if n == 0 {
		v.fail(path, "no PromQL expression found")
	}
}

func (v *validator) stream(where string, data []byte) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for i := 0; ; i++ {
		doc, err := r.Read()
		if err == io.EOF {
			return
		}
		if err != nil {
			v.fail(where, "reading YAML document %d: %v", i, err)
			return
		}
		v.object(where, doc)
	}
}

func (v *validator) kustomization(dir string) {
	opts := krusty.MakeDefaultOptions()
	k := krusty.MakeKustomizer(opts)
	resMap, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		v.fail(dir, "kustomize build: %v", err)
		return
	}
	data, err := resMap.AsYaml()
	if err != nil {
		v.fail(dir, "kustomize output: %v", err)
		return
	}
	v.stream(dir+" (rendered)", data)
}

func main() {
	outFile := flag.String("o", "", "write every object seen (rendered) to this multi-document YAML file")
	var dashboards multiFlag
	flag.Var(&dashboards, "dashboard", "a Grafana dashboard JSON whose PromQL targets to parse (repeatable)")
	metricsFile := flag.String("metrics-out", "", "write the metric names used by rules and dashboards to this file, one a line, then \"name label\" for each label they match or group by")
	flag.Parse()
	if flag.NArg() == 0 && len(dashboards) == 0 {
		fmt.Fprintln(os.Stderr, "usage: k8svalidate [-o rendered.yaml] DIR|FILE...")
		os.Exit(2)
	}
	v := newValidator()
	for _, p := range flag.Args() {
		st, err := os.Stat(p)
		if err != nil {
			v.fail(p, "%v", err)
			continue
		}
		if st.IsDir() {
			v.kustomization(p)
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			v.fail(p, "%v", err)
			continue
		}
		v.stream(filepath.Clean(p), data)
	}
	for _, d := range dashboards {
		v.dashboard(d)
	}
	if *metricsFile != "" {
		names := make([]string, 0, len(v.metrics))
		for m := range v.metrics {
			names = append(names, m)
		}
		sort.Strings(names)
		body := strings.Join(names, "\n")
		if body != "" {
			body += "\n"
		}
		if err := os.WriteFile(*metricsFile, []byte(body), 0o644); err != nil {
			v.fail(*metricsFile, "%v", err)
		}
	}
	if *outFile != "" {
		if err := os.WriteFile(*outFile, v.out.Bytes(), 0o644); err != nil {
			v.fail(*outFile, "%v", err)
		}
	}
	fmt.Printf("k8svalidate: %d objects, %d PromQL expressions checked, %d errors\n", v.objects, v.exprs, v.errors)
	if v.errors > 0 {
		os.Exit(1)
	}
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }
