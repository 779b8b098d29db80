package lb

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"

	"mtlsconform/contract"
)

// Implementation is what a reference balancer is: the image it runs in
// (built offline from Debian packages when missing), how a Config is
// rendered into its configuration files, how it is started and known to
// be ready, the profile it was measured to have, and the ways its
// configuration can be broken on purpose.
type Implementation interface {
	// Name is how users pick it: "nginx".
	Name() string
	// Image is the tag of its image; Packages are the Debian packages it
	// is built from when the tag is missing.
	Image() string
	Packages() string
	// Render turns cfg, mutations included, into the files under ConfDir,
	// with the run's server credential. A configuration the implementation
	// cannot be put in at all is a contract.ErrNotSupported.
	Render(cfg Config, srv ServerFiles) (Rendered, error)
	// Command starts it in the foreground; its first word is the binary
	// the image must hold.
	Command() []string
	// ReadyLog is a log line it prints once started; readiness is then
	// proven by a TLS handshake with the run's server certificate.
	ReadyLog() string
	// Profile is how it refuses and where it knowingly deviates.
	Profile() contract.Profile
	// Mutations are the deliberate breaks it supports: name → what breaks
	// (every name is in Catalogue).
	Mutations() map[string]string
}

// Multiplexed is an implementation that serves many configurations from
// one running balancer, each in a slot of its own: its own listening port,
// truststore, CRL and headers, added by a reload. A configuration then
// costs a reload instead of a container.
type Multiplexed interface {
	Implementation
	// HostFiles are the files the shared balancer starts with (under
	// ConfDir): a main configuration that reads every slot and serves none
	// yet.
	HostFiles() map[string][]byte
	// HostCommand starts the shared balancer in the foreground.
	HostCommand() []string
	// HostReadyLog is a log line it prints once it runs.
	HostReadyLog() string
	// Slot turns a configuration rendered by Render into the files of slot
	// id (names relative to ConfDir), listening on port instead of 8443.
	// The slot behaves as the rendered configuration does on its own.
	Slot(r Rendered, id string, port int) (map[string][]byte, error)
	// Reload makes the running balancer read its configuration, every
	// slot included, again.
	Reload() Reload
	// ConfigTest checks the configuration as it is on disk; it runs when a
	// reload did not bring a slot up, to say why.
	ConfigTest() []string
}

// Separate is a Multiplexed implementation that can also run one slot as
// a balancer process of its own inside the shared balancer's container:
// a configuration changed in place (a new CRL delivered, C23) is then
// isolated from every other slot's reloads at the cost of a command, not
// a container.
type Separate interface {
	Multiplexed
	// Separate turns slot id's files (as Slot made them) into the files of
	// a process of its own, under own/<id>/, and says how to start it and
	// how to make it read its configuration again.
	Separate(slot map[string][]byte, id string) (files map[string][]byte, start, reload []string, err error)
}

// Processes is an implementation that serves each configuration as a
// balancer process of its own inside one shared container, on ports of its
// own. It is for a balancer that cannot serve several configurations from
// one process (Traffic Server: its ports, its client CA and its remap
// script are the whole server's), where a container for each costs the
// engine more than the balancer does.
type Processes interface {
	Implementation
	// HostCommand keeps the shared container running and prints
	// HostReadyLog once it does; it serves nothing itself.
	HostCommand() []string
	HostReadyLog() string
	// Process turns a configuration rendered by Render into the files of
	// a process of its own (names under OwnDir(id)/), listening on port
	// and port+PlainPortOffset instead of 8443 and 8088, and the command
	// that starts it in the background and returns at once.
	Process(r Rendered, id string, port int) (files map[string][]byte, start []string, err error)
}

// OwnDir is the folder of a separate process's files, under ConfDir.
func OwnDir(id string) string { return "own/" + id }

// MoveSlot moves slot id's files and every mention of their folder to
// own/<id>/: the configuration, unchanged otherwise, of a process of its
// own.
func MoveSlot(slot map[string][]byte, id string) map[string][]byte {
	from, to := "slots/"+id+"/", OwnDir(id)+"/"
	out := map[string][]byte{}
	for name, data := range slot {
		if !strings.HasPrefix(name, from) {
			continue
		}
		out[to+strings.TrimPrefix(name, from)] = bytes.ReplaceAll(data, []byte(ConfDir+"/"+from), []byte(ConfDir+"/"+to))
	}
	return out
}

// Reload is how a shared balancer takes new slots: a signal to its main
// process, or, where it has none for that, a command run inside its
// container that must exit 0.
type Reload struct {
	Signal string
	Exec   []string
}

// ServerFiles are the run's server certificate chain and key, in PEM.
type ServerFiles struct {
	Chain, Key []byte
}

// Files are the credential as most balancers read it: server-chain.pem
// and server.key.
func (s ServerFiles) Files() map[string][]byte {
	return map[string][]byte{"server-chain.pem": s.Chain, "server.key": s.Key}
}

// Rendered is a configuration ready to copy into a container.
type Rendered struct {
	Config string            // the main configuration file's text
	Files  map[string][]byte // file name (inside ConfDir) → content
	Key    string            // identity of the whole configuration
}

// Text gathers what a text-configured implementation writes: its main
// file, the truststore and the CRL bundle when there is one, and its own
// files (the server credential as it reads it), under one configuration
// key.
func Text(mainFile, conf string, c Config, own map[string][]byte) Rendered {
	r := Rendered{Config: conf, Files: map[string][]byte{mainFile: []byte(conf), "truststore.pem": c.Truststore}}
	for name, data := range own {
		r.Files[name] = data
	}
	if len(c.CRL) > 0 {
		r.Files["crl.pem"] = c.CRL
	}
	r.Key = HashFiles(r.Files)
	return r
}

// HashFiles names a set of files by their names and contents.
func HashFiles(files map[string][]byte) string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(files[n]))
		h.Write(files[n])
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// InSlot moves every ConfDir path in a configuration text into the folder
// of slot id.
func InSlot(text, id string) string {
	return strings.ReplaceAll(text, ConfDir+"/", ConfDir+"/slots/"+id+"/")
}

// ReplaceOnce makes each replacement in a slot's text, each of which must
// find its text exactly once.
func ReplaceOnce(text, id string, repl map[string]string) (string, error) {
	olds := make([]string, 0, len(repl))
	for old := range repl {
		olds = append(olds, old)
	}
	slices.Sort(olds)
	for _, old := range olds {
		if n := strings.Count(text, old); n != 1 {
			return "", fmt.Errorf("slot %s: %q occurs %d times in the rendered configuration, want once", id, strings.TrimSpace(old), n)
		}
		text = strings.Replace(text, old, repl[old], 1)
	}
	return text, nil
}

// SlotFiles are a slot's copies of every rendered file but the main one,
// under slots/<id>/; the caller adds the slot's configuration text.
func SlotFiles(r Rendered, main, id string) map[string][]byte {
	files := map[string][]byte{}
	for f, data := range r.Files {
		if f != main {
			files["slots/"+id+"/"+f] = data
		}
	}
	return files
}
