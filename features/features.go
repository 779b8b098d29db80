// Package features embeds the Gherkin feature files, so the CLI carries the
// suite with it; go test reads the same files.
package features

import "embed"

// FS holds every *.feature file of this folder.
//
//go:embed *.feature
var FS embed.FS
