package runner_test

import (
	"context"
	"fmt"
	"os"

	"mtlsconform/contract"
	"mtlsconform/runner"
)

// Run the built-in suite (or a team's own feature files, with Features)
// against the reference nginx, started in containers for the run and
// removed after it. It needs Docker, so this example is compiled, not run.
func ExampleRun() {
	res, err := runner.Run(context.Background(), runner.RunOptions{
		Tags:        "@mandatory && ~@pitfall",
		Concurrency: 4,
		Output:      os.Stdout,
	})
	if err != nil {
		panic(err) // the run itself broke: no Docker, an image that cannot be built
	}
	fmt.Println(contract.CountLine(res.Results))
	cov := contract.ComputeCoverage(res.Results, res.Modes)
	if !cov.Conclusive() {
		fmt.Println("inconclusive:", cov.Problem())
	}
}

// A live balancer the harness did not start: the same features, with what
// the target cannot do reported not applicable.
func ExampleNewLive() {
	live, err := runner.NewLive(runner.LiveOptions{
		URL:  "https://lb.example.com:443",
		Mode: contract.Mandatory,
		// Credential, ServerRoots, EchoPath, CA: see LiveOptions.
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	_, _ = runner.Run(context.Background(), runner.RunOptions{Target: live, Profile: contract.GenericHTTP400})
	// Output:
	// a live target needs a client credential it trusts (LiveOptions.Credential): the trusted partner's certificate and key
}
