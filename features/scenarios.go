package features

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"strings"
)

// Scenario is a scenario of the suite as its file declares it.
type Scenario struct {
	File, Name string
	// Tags are the feature's tags and the scenario's own.
	Tags []string
}

// Scenarios reads every scenario of the embedded features with its own
// and its feature's tags (an Examples block's tags are left out).
func Scenarios() ([]Scenario, error) {
	files, err := fs.Glob(FS, "*.feature")
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no feature files embedded (%v)", err)
	}
	var out []Scenario
	for _, f := range files {
		data, err := fs.ReadFile(FS, f)
		if err != nil {
			return nil, err
		}
		var featureTags, pending []string
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			switch {
			case strings.HasPrefix(line, "@"):
				pending = append(pending, strings.Fields(line)...)
			case strings.HasPrefix(line, "Feature:"):
				featureTags, pending = pending, nil
			case strings.HasPrefix(line, "Examples:"):
				pending = nil
			case strings.HasPrefix(line, "Scenario:") || strings.HasPrefix(line, "Scenario Outline:"):
				_, name, _ := strings.Cut(line, ":")
				out = append(out, Scenario{f, strings.TrimSpace(name), append(append([]string{}, featureTags...), pending...)})
				pending = nil
			}
		}
	}
	return out, nil
}
