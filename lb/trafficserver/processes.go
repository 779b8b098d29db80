package trafficserver

import (
	"bytes"
	"fmt"
	"strings"

	"mtlsconform/lb"
)

// Traffic Server serves every configuration as a process of its own in one
// shared container (lb.Processes): a container each cost the engine about
// two seconds of CPU, more than Traffic Server itself.

var _ lb.Processes = Balancer{}

// hostReady is what the shared container prints once it runs.
const hostReady = "mtlsconform: Traffic Server processes host ready"

// HostCommand keeps the shared container running; each configuration is a
// traffic_server started in it by Process's command.
func (Balancer) HostCommand() []string {
	return []string{"sh", "-c", "echo '" + hostReady + "'; exec sleep infinity"}
}

func (Balancer) HostReadyLog() string { return hostReady }

// Process moves a rendered configuration under own/<id>/: every path of
// the configuration folder, its ports (port and port+PlainPortOffset), and
// the folders Traffic Server writes its state and lock files in (one per
// process, under /tmp). Its start command runs traffic_server in the
// background, its output the container's log.
func (Balancer) Process(r lb.Rendered, id string, port int) (map[string][]byte, []string, error) {
	dir := lb.ConfDir + "/" + lb.OwnDir(id)
	state := "/tmp/trafficserver-" + id
	if _, ok := r.Files["records.config"]; !ok {
		return nil, nil, fmt.Errorf("trafficserver process %s: the rendered configuration has no records.config", id)
	}
	files := map[string][]byte{}
	for name, data := range r.Files {
		if !strings.HasSuffix(name, ".pem") && !strings.HasSuffix(name, ".key") {
			data = bytes.ReplaceAll(data, []byte(lb.ConfDir), []byte(dir))
		}
		files[lb.OwnDir(id)+"/"+name] = data
	}
	records, err := lb.ReplaceOnce(string(files[lb.OwnDir(id)+"/records.config"]), id, map[string]string{
		"server_ports STRING " + lb.PortNumber(lb.Port) + ":ssl " + lb.PortNumber(lb.PlainPort) + "\n": fmt.Sprintf("server_ports STRING %d:ssl %d\n", port, port+lb.PlainPortOffset),
	})
	if err != nil {
		return nil, nil, err
	}
	files[lb.OwnDir(id)+"/records.config"] = []byte(records)
	runroot, err := lb.ReplaceOnce(string(files[lb.OwnDir(id)+"/runroot.yaml"]), id, map[string]string{
		"localstatedir: /var/cache/trafficserver\n": "localstatedir: " + state + "\n",
		"runtimedir: /var/cache/trafficserver\n":    "runtimedir: " + state + "\n",
		"logdir: /var/log/trafficserver\n":          "logdir: " + state + "\n",
		"cachedir: /var/cache/trafficserver\n":      "cachedir: " + state + "\n",
	})
	if err != nil {
		return nil, nil, err
	}
	files[lb.OwnDir(id)+"/runroot.yaml"] = []byte(runroot)
	start := []string{"sh", "-c", "mkdir -p " + state + " && " +
		"{ /usr/bin/traffic_server --run-root=" + dir + "/runroot.yaml </dev/null >/proc/1/fd/1 2>&1 & }"}
	return files, start, nil
}
