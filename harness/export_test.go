package harness

import "context"

// SweepKeptUnder is Sweep with kept units removed only where their folders
// are under root: a test's own units, never those a developer's --warm
// runs keep on the same machine.
func SweepKeptUnder(ctx context.Context, root string) (SweepReport, error) {
	cli, err := dockerClient(ctx)
	if err != nil {
		return SweepReport{}, err
	}
	defer cli.Close()
	return sweepKept(ctx, cli, "", 0, root)
}
