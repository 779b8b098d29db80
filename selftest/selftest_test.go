package selftest

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"mtlsconform/contract"
	"mtlsconform/lb/nginx"
	"mtlsconform/runner"
)

// scenario is a result; a failed one failed a check of the contract.
func scenario(name string, status contract.Status, clauses ...string) contract.ScenarioResult {
	return contract.ScenarioResult{Feature: "mandatory", Name: name, Status: status, Clauses: clauses, Violation: status == contract.Failed}
}

// fakeSuite answers each run from results keyed by the mutation ("" for
// the reference) and records the runs asked for; a run whose key is in
// after waits until the run it names has answered.
type fakeSuite struct {
	results map[string]contract.RunResult
	after   map[string]string
	mu      sync.Mutex
	asked   []string
	tags    map[string]string
	ended   map[string]chan struct{}
}

func (f *fakeSuite) ends(key string) chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ended == nil {
		f.ended = map[string]chan struct{}{}
	}
	if f.ended[key] == nil {
		f.ended[key] = make(chan struct{})
	}
	return f.ended[key]
}

func (f *fakeSuite) run(mutations []string, tags string) (contract.RunResult, error) {
	key := strings.Join(mutations, ",")
	if first, ok := f.after[key]; ok {
		<-f.ends(first)
	}
	defer close(f.ends(key))
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, key)
	if f.tags == nil {
		f.tags = map[string]string{}
	}
	f.tags[key] = tags
	res, ok := f.results[key]
	if !ok {
		return contract.RunResult{}, errors.New("no Docker")
	}
	return res, nil
}

func TestScore(t *testing.T) {
	stale := scenario("deviation gone", contract.Failed, "C11")
	stale.StaleDeviation, stale.Violation = true, false
	timeout := scenario("expired CRL", contract.Failed, "C15")
	timeout.Violation = false // the harness timed out: no promise was checked
	suite := &fakeSuite{results: map[string]contract.RunResult{
		"": {Wall: 2 * time.Second, Results: []contract.ScenarioResult{
			scenario("no certificate", contract.Passed, "C1"),
			scenario("expired", contract.KnownDeviation, "C11"),
		}},
		"caught": {Wall: 1234567 * time.Microsecond, Results: []contract.ScenarioResult{
			scenario("no certificate", contract.Failed, "C1"),
			scenario("unknown CA", contract.Failed, "C3", "C4"),
			scenario("expired", contract.KnownDeviation, "C11"),
		}},
		// Only a known deviation went away: that breaks no promise.
		"stale-only": {Results: []contract.ScenarioResult{scenario("no certificate", contract.Passed, "C1"), stale}},
		"survivor":   {Results: []contract.ScenarioResult{scenario("no certificate", contract.Passed, "C1")}},
		// Only the harness failed: that catches nothing either.
		"harness-only": {Results: []contract.ScenarioResult{scenario("no certificate", contract.Passed, "C1"), timeout}},
	}}
	var heardReference []string
	var heardMutants []string
	rep, err := score(Options{
		Mutants: []runner.Mutation{{Name: "caught", Doc: "breaks C1"}, {Name: "stale-only"}, {Name: "survivor"}, {Name: "harness-only"}},
		OnReference: func(failed []string, wall time.Duration) {
			heardReference = append(heardReference, Baseline(failed)+" "+wall.String())
		},
		OnMutant: func(m MutantResult) { heardMutants = append(heardMutants, m.Name) },
	}, suite.run)
	if err != nil {
		t.Fatal(err)
	}
	want := &Report{
		Mutants: []MutantResult{
			{Name: "caught", Doc: "breaks C1", Caught: true, Wall: "1.235s",
				CaughtBy: []string{"mandatory: no certificate [C1]", "mandatory: unknown CA [C3 C4]"}},
			{Name: "stale-only", Wall: "0s"},
			{Name: "survivor", Wall: "0s"},
			{Name: "harness-only", Wall: "0s"},
		},
		Caught: 1, Total: 4,
	}
	if diff := cmp.Diff(want, rep); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"", "caught", "stale-only", "survivor", "harness-only"}, suite.asked); diff != "" {
		t.Errorf("runs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"passes 2s"}, heardReference); diff != "" {
		t.Errorf("reference progress (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"caught", "stale-only", "survivor", "harness-only"}, heardMutants); diff != "" {
		t.Errorf("mutant progress (-want +got):\n%s", diff)
	}
	if rep.Passed() {
		t.Error("Passed with three survivors")
	}
	if got := rep.KillRate(); got != 25 {
		t.Errorf("kill rate %.2f, want 25", got)
	}
}

// TestScoreFocused: a focused self-test runs the reference whole and each
// mutant with the scenarios of the clauses it breaks.
func TestScoreFocused(t *testing.T) {
	suite := &fakeSuite{results: map[string]contract.RunResult{
		"":                 {Results: []contract.ScenarioResult{scenario("no certificate", contract.Passed, "C1")}},
		"verify-nothing":   {Results: []contract.ScenarioResult{scenario("unknown CA", contract.Failed, "C2")}},
		"trust-unknown-ca": {Results: []contract.ScenarioResult{scenario("unknown CA", contract.Failed, "C2")}},
	}}
	rep, err := score(Options{Focused: true, Mutants: []runner.Mutation{{Name: "verify-nothing"}, {Name: "trust-unknown-ca"}}}, suite.run)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"": "", "verify-nothing": "@C2,@C10", "trust-unknown-ca": "@C2"}, suite.tags); diff != "" {
		t.Errorf("tags of each run (-want +got):\n%s", diff)
	}
	if !rep.Passed() {
		t.Errorf("report %+v", rep)
	}
}

func TestScoreBaselineFailure(t *testing.T) {
	failed := scenario("no certificate", contract.Failed, "C1")
	failed.Error = "expected HTTP 400, got HTTP 200\n  sent: GET /"
	suite := &fakeSuite{results: map[string]contract.RunResult{
		"":  {Results: []contract.ScenarioResult{failed, scenario("p12", contract.Passed)}},
		"m": {Results: []contract.ScenarioResult{scenario("no certificate", contract.Failed, "C1")}},
	}}
	rep, err := score(Options{Mutants: []runner.Mutation{{Name: "m"}}}, suite.run)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"mandatory: no certificate (expected HTTP 400, got HTTP 200)"}, rep.BaselineFailed); diff != "" {
		t.Errorf("baseline failures (-want +got):\n%s", diff)
	}
	if rep.Caught != 1 || rep.Passed() {
		t.Errorf("caught %d, passed %v: a failing reference fails the self-test even when every mutant is caught", rep.Caught, rep.Passed())
	}
	if got := Baseline(rep.BaselineFailed); got != "FAILS: mandatory: no certificate (expected HTTP 400, got HTTP 200)" {
		t.Errorf("Baseline = %q", got)
	}
}

func TestScoreStopsOnRunError(t *testing.T) {
	suite := &fakeSuite{results: map[string]contract.RunResult{"": {}}}
	_, err := score(Options{Mutants: []runner.Mutation{{Name: "gone"}}}, suite.run)
	if err == nil || !strings.Contains(err.Error(), "mutant gone: no Docker") {
		t.Errorf("score = %v, want the failing mutant named", err)
	}
}

func TestEveryMutantCaughtPasses(t *testing.T) {
	rep := &Report{}
	rep.add(MutantResult{Name: "a", Caught: true, CaughtBy: []string{"x"}})
	if !rep.Passed() || rep.KillRate() != 100 {
		t.Errorf("passed %v, kill rate %v; want true, 100", rep.Passed(), rep.KillRate())
	}
	if (&Report{}).KillRate() != 0 {
		t.Error("kill rate without mutants is not 0")
	}
}

func TestSelect(t *testing.T) {
	all, err := Select(nginx.Balancer{}, nil)
	if err != nil || len(all) != len(runner.Mutations()) {
		t.Fatalf("Select(nginx.Balancer{}, nil) = %d mutants, %v; want all %d", len(all), err, len(runner.Mutations()))
	}
	// In runner.Mutations order, whatever the order asked.
	names := []string{all[len(all)-1].Name, all[0].Name}
	picked, err := Select(nginx.Balancer{}, names)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]runner.Mutation{all[0], all[len(all)-1]}, picked); diff != "" {
		t.Errorf("Select(%v) (-want +got):\n%s", names, diff)
	}
	if _, err := Select(nginx.Balancer{}, []string{"no-such-thing"}); err == nil || !strings.Contains(err.Error(), "use one of "+all[0].Name) {
		t.Errorf("Select(unknown) = %v, want the known names", err)
	}
}

func TestFiles(t *testing.T) {
	rep := &Report{
		BaselineFailed: nil,
		Mutants: []MutantResult{
			{Name: "pass-client-verify", Doc: "accepts any certificate", Caught: true, CaughtBy: []string{"mandatory: unknown CA [C3]"}, Wall: "1s"},
			{Name: "quiet", Doc: "changes nothing", Wall: "1s"},
		},
		Caught: 1, Total: 2,
	}
	files, err := rep.Files()
	if err != nil {
		t.Fatal(err)
	}
	wantMD := "## mtlsconform self-test\n\nReference: passes. Kill rate 1/2.\n\n" +
		"| mutant | what it breaks | caught by |\n|---|---|---|\n" +
		"| `pass-client-verify` | accepts any certificate | 1 scenario(s), e.g. mandatory: unknown CA [C3] |\n" +
		"| `quiet` | changes nothing | **survived** |\n"
	if diff := cmp.Diff(wantMD, string(files["selftest.md"])); diff != "" {
		t.Errorf("selftest.md (-want +got):\n%s", diff)
	}
	var back Report
	if err := json.Unmarshal(files["selftest.json"], &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rep, &back); diff != "" {
		t.Errorf("selftest.json round trip (-want +got):\n%s", diff)
	}
	if !strings.Contains(string(files["selftest.json"]), `"baseline_failed": null`) {
		t.Errorf("selftest.json lacks baseline_failed:\n%s", files["selftest.json"])
	}
}

// A focused self-test runs its mutants at once, and reports them in their
// order whatever order they end in; the reference runs first, alone.
func TestScoreFocusedAtOnce(t *testing.T) {
	caught := contract.RunResult{Results: []contract.ScenarioResult{scenario("unknown CA", contract.Failed, "C2")}}
	suite := &fakeSuite{
		results: map[string]contract.RunResult{"": {}, "first": caught, "second": caught, "third": caught},
		// "first" ends only once "second" has: they run at once, or this
		// never ends.
		after: map[string]string{"first": "second", "second": "third"},
	}
	var heard []string
	rep, err := score(Options{Focused: true, Mutants: []runner.Mutation{{Name: "first"}, {Name: "second"}, {Name: "third"}},
		OnMutant: func(m MutantResult) { heard = append(heard, m.Name) }}, suite.run)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"", "third", "second", "first"}, suite.asked); diff != "" {
		t.Errorf("runs in the order they answered (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"first", "second", "third"}, heard); diff != "" {
		t.Errorf("mutants heard (-want +got):\n%s", diff)
	}
	var names []string
	for _, m := range rep.Mutants {
		names = append(names, m.Name)
	}
	if diff := cmp.Diff([]string{"first", "second", "third"}, names); diff != "" || rep.Caught != 3 {
		t.Errorf("report's mutants (-want +got):\n%s\ncaught %d", diff, rep.Caught)
	}
}
