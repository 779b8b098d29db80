package features

import (
	"bytes"
	"io/fs"
	"strings"
	"testing"

	gherkin "github.com/cucumber/gherkin/go/v42"
	messages "github.com/cucumber/messages/go/v34"

	"mtlsconform/contract"
	"mtlsconform/steps"
)

type scenario struct {
	file, name string
	tags       []string
}

// scenarios reads every scenario with its own and its feature's tags.
func scenarios(t *testing.T) []scenario {
	t.Helper()
	all, err := Scenarios()
	if err != nil {
		t.Fatal(err)
	}
	var out []scenario
	for _, s := range all {
		out = append(out, scenario{s.File, s.Name, s.Tags})
	}
	return out
}

// TestEveryScenarioNamesItsClauseAndMode is the Gherkin lint: a report can
// only say which clauses passed if every scenario says which it checks.
func TestEveryScenarioNamesItsClauseAndMode(t *testing.T) {
	covered := map[string]bool{}
	for _, s := range scenarios(t) {
		hasClause, hasMode := false, false
		for _, tag := range s.tags {
			if _, ok := contract.ClauseOfTag(tag); ok {
				hasClause, covered[tag] = true, true
			}
			_, isMode := contract.ModeOfTag(tag)
			hasMode = hasMode || isMode
		}
		if !hasClause {
			t.Errorf("%s: %q has no clause tag (@C1 … @C22)", s.file, s.name)
		}
		if !hasMode {
			t.Errorf("%s: %q has no mode tag (@mandatory or @optional)", s.file, s.name)
		}
	}
	for _, c := range contract.Clauses {
		if tag := "@" + c.ID; !covered[tag] {
			t.Errorf("no scenario checks %s", tag)
		}
	}
}

// TestEveryPitfallHasAFix: a pitfall scenario shows the failure, and a
// scenario of the same feature shows the fix.
func TestEveryPitfallHasAFix(t *testing.T) {
	pitfalls, fixes := map[string]int{}, map[string]int{}
	for _, s := range scenarios(t) {
		switch {
		case strings.HasPrefix(s.name, "Pitfall:"):
			pitfalls[s.file]++
		case strings.HasPrefix(s.name, "Fix:"):
			fixes[s.file]++
		}
	}
	if len(pitfalls) == 0 {
		t.Fatal("no pitfall scenarios found")
	}
	for f, n := range pitfalls {
		if fixes[f] == 0 {
			t.Errorf("%s has %d pitfall(s) and no fix", f, n)
		}
	}
}

// pickles are the scenarios as godog runs them: outlines expanded, the
// Background's steps first, tags inherited.
func pickles(t *testing.T) []*messages.Pickle {
	t.Helper()
	files, err := fs.Glob(FS, "*.feature")
	if err != nil {
		t.Fatal(err)
	}
	var out []*messages.Pickle
	for _, f := range files {
		data, err := fs.ReadFile(FS, f)
		if err != nil {
			t.Fatal(err)
		}
		ids := (&messages.Incrementing{}).NewId
		doc, err := gherkin.ParseGherkinDocument(bytes.NewReader(data), ids)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, gherkin.Pickles(*doc, f, ids)...)
	}
	return out
}

// TestTagsDeclareWhatScenariosNeed: a scenario's @backend-view,
// @new-leaves and @reconfigures tags are exactly what its steps need, so a
// target that lacks a capability is known to make the scenario not
// applicable before it runs.
func TestTagsDeclareWhatScenariosNeed(t *testing.T) {
	for _, p := range pickles(t) {
		var texts []string
		for _, s := range p.Steps {
			texts = append(texts, s.Text)
		}
		want := map[steps.Need]bool{}
		for _, n := range steps.NeedsOf(texts) {
			want[n] = true
		}
		got := map[steps.Need]bool{}
		for _, tag := range p.Tags {
			if n, ok := steps.NeedOfTag(tag.Name); ok {
				got[n] = true
			}
		}
		for _, n := range steps.Needs {
			switch {
			case want[n] && !got[n]:
				t.Errorf("%s: %q needs @%s but does not say so", p.Uri, p.Name, n)
			case got[n] && !want[n]:
				t.Errorf("%s: %q is tagged @%s but none of its steps needs it", p.Uri, p.Name, n)
			}
		}
	}
}
