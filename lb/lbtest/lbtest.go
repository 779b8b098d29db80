// Package lbtest is the conformance kit every implementation's tests run:
// its rendering pinned by golden files, bad input refused as bad input,
// every mutation in the catalogue and changing what it renders, slots
// that stay in their own folder and port, and a profile whose deviations
// name clauses, modes and scenarios that exist.
package lbtest

import (
	"errors"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"mtlsconform/contract"
	"mtlsconform/features"
	"mtlsconform/lb"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// Server is the stand-in server credential golden renderings are made with.
var Server = lb.ServerFiles{Chain: []byte("server chain\n"), Key: []byte("server key\n")}

// Configs are the configurations whose rendering every implementation
// pins, where it supports them.
func Configs() map[string]lb.Config {
	return map[string]lb.Config{
		"mandatory": {Mode: contract.Mandatory, Truststore: []byte("trust\n")},
		"optional":  {Mode: contract.Optional, Truststore: []byte("trust\n")},
		"crl-depth-header": {Mode: contract.Mandatory, Truststore: []byte("trust\n"), CRL: []byte("crl\n"),
			VerifyDepth: 3, CertHeader: "X-Client-Certificate"},
	}
}

// OCSPConfig asks for client certificates checked by OCSP (C24). The kit
// pins its rendering where the implementation has it, and its reason
// where not.
func OCSPConfig() lb.Config {
	return lb.Config{Mode: contract.Optional, Truststore: []byte("trust\n"), OCSPResponder: "http://" + lb.Backend + "/ocsp"}
}

// ConfigsWithoutCRLOrDepth are Configs for an implementation with neither
// a CRL nor a verify-depth option, with one of their own for the
// certificate header's name in place of the one that asks for all three.
func ConfigsWithoutCRLOrDepth() map[string]lb.Config {
	out := map[string]lb.Config{
		"header": {Mode: contract.Mandatory, Truststore: []byte("trust\n"), CertHeader: "X-Client-Certificate"},
	}
	for name, cfg := range Configs() {
		if len(cfg.CRL) == 0 && cfg.VerifyDepth == 0 {
			out[name] = cfg
		}
	}
	return out
}

// Kit says what is particular to an implementation.
type Kit struct {
	// Ext is the golden files' extension: "conf", "cfg", "json".
	Ext string
	// Configs replace Configs() where the implementation supports only
	// some of them; each is rendered and pinned.
	Configs map[string]lb.Config
	// Refusal is the refusal its profile must name.
	Refusal contract.Refusal
	// Files are the files every configuration renders to; crl.pem comes
	// in addition where there is a CRL.
	Files []string
	// Main is the file whose content is the rendered Config; empty where
	// Config is the files together.
	Main string
}

// Run runs the whole kit against impl.
func Run(t *testing.T, impl lb.Implementation, k Kit) {
	if k.Configs == nil {
		k.Configs = Configs()
	}
	if _, err := impl.Render(OCSPConfig(), Server); errors.Is(err, contract.ErrNotSupported) {
		t.Run("ocsp unsupported", func(t *testing.T) { Compare(t, "testdata/golden/ocsp.unsupported.txt", err.Error()+"\n") })
	} else {
		k.Configs = maps.Clone(k.Configs)
		k.Configs["ocsp"] = OCSPConfig()
	}
	t.Run("golden", func(t *testing.T) {
		for name, cfg := range k.Configs {
			r := Golden(t, impl, name, k.Ext, cfg)
			want := slices.Clone(k.Files)
			if len(cfg.CRL) > 0 {
				want = append(want, "crl.pem")
			}
			if got := slices.Sorted(maps.Keys(r.Files)); !slices.Equal(slices.Sorted(slices.Values(want)), got) {
				t.Errorf("%s: files %v, want %v", name, got, want)
			}
			if k.Main != "" && string(r.Files[k.Main]) != r.Config {
				t.Errorf("%s: %s is not the rendered configuration", name, k.Main)
			}
		}
	})
	t.Run("schemes", func(t *testing.T) { schemes(t, impl, k.Ext) })
	t.Run("bad input", func(t *testing.T) { badInput(t, impl) })
	t.Run("mutations", func(t *testing.T) { mutations(t, impl, k.Configs) })
	if m, ok := impl.(lb.Multiplexed); ok {
		t.Run("slots", func(t *testing.T) { slots(t, m, k.Configs) })
	}
	if p, ok := impl.(lb.Processes); ok {
		t.Run("processes", func(t *testing.T) { processes(t, p, k.Configs) })
	}
	t.Run("profile", func(t *testing.T) { profile(t, impl, k) })
	t.Run("image", func(t *testing.T) { image(t, impl) })
}

// image: image.tsv, which scripts/build-images.sh reads before the CLI is
// built, says what the implementation says: its name, image, packages
// and the binary its Command runs (which the build checks for).
func image(t *testing.T, impl lb.Implementation) {
	data, err := os.ReadFile("image.tsv")
	if err != nil {
		t.Fatalf("%v: every implementation's folder has an image.tsv line for scripts/build-images.sh", err)
	}
	var lines [][]string
	for _, line := range strings.Split(string(data), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			lines = append(lines, strings.Split(line, "\t"))
		}
	}
	want := []string{impl.Name(), impl.Image(), impl.Packages(), impl.Command()[0]}
	if len(lines) != 1 || !slices.Equal(lines[0], want) {
		t.Errorf("image.tsv says %q; the implementation says %q (name, image, packages, binary, tab-separated, one line)", lines, want)
	}
}

// Golden renders cfg with impl and compares the main configuration file
// with testdata/golden/NAME.EXT (go test -run /golden -update rewrites
// the golden files after a deliberate change; read the diff before
// committing it).
func Golden(t *testing.T, impl lb.Implementation, name, ext string, cfg lb.Config) lb.Rendered {
	t.Helper()
	r, err := impl.Render(cfg, Server)
	if err != nil {
		t.Fatalf("%s %s: %v", impl.Name(), name, err)
	}
	Compare(t, filepath.Join("testdata", "golden", name+"."+ext), r.Config)
	if string(r.Files["truststore.pem"]) != string(cfg.Truststore) {
		t.Errorf("%s: truststore.pem is not the team's bundle as given", name)
	}
	if _, ok := r.Files["crl.pem"]; ok != (len(cfg.CRL) > 0) {
		t.Errorf("%s: crl.pem rendered %v, want %v", name, ok, len(cfg.CRL) > 0)
	}
	if r.Key == "" || r.Key != lb.HashFiles(r.Files) {
		t.Errorf("%s: the configuration key is not the hash of its files", name)
	}
	return r
}

// Compare compares got with the golden file at path (rewriting it under
// -update).
func Compare(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("the rendering differs from %s (-want +got):\n%s", path, diff)
	}
}

// schemes: the implementation takes a position on every built-in header
// scheme, pinned in testdata/golden: its rendering in Optional mode
// (scheme-NAME.EXT), or "not supported" with the reason
// (scheme-NAME.unsupported.txt). A rendering names every header the
// scheme sets or strips.
func schemes(t *testing.T, impl lb.Implementation, ext string) {
	for _, name := range contract.SchemeNames() {
		t.Run(name, func(t *testing.T) {
			s, err := contract.LookupScheme(name)
			if err != nil {
				t.Fatal(err)
			}
			r, err := impl.Render(lb.Config{Mode: contract.Optional, Truststore: []byte("trust\n"), Scheme: s}, Server)
			golden := filepath.Join("testdata", "golden", "scheme-"+name)
			if err != nil {
				if !errors.Is(err, contract.ErrNotSupported) {
					t.Fatalf("%s: %v (a built-in scheme is no bad input: render it, or say why not with contract.Unsupported)", name, err)
				}
				Compare(t, golden+".unsupported.txt", err.Error()+"\n")
				return
			}
			Compare(t, golden+"."+ext, r.Config)
			text := strings.ToLower(SlotText(r.Files))
			for _, h := range s.Stripped() {
				if !strings.Contains(text, strings.ToLower(h)) && !strings.Contains(text, strings.ToLower(strings.ReplaceAll(h, "-", "[-_]"))) {
					t.Errorf("%s: the rendering never names %s, a header the scheme sets or strips", name, h)
				}
			}
		})
	}
}

// badInput: what no balancer can be put in is a configuration error,
// never a "not supported" that would hide a bug as a gap.
func badInput(t *testing.T, impl lb.Implementation) {
	good := lb.Config{Mode: contract.Mandatory, Truststore: []byte("trust\n")}
	bad := map[string]lb.Config{}
	with := func(edit func(*lb.Config)) lb.Config { c := good; edit(&c); return c }
	bad["empty truststore"] = with(func(c *lb.Config) { c.Truststore = []byte(" \n") })
	bad["unknown mode"] = with(func(c *lb.Config) { c.Mode = "sometimes" })
	bad["header name with a space"] = with(func(c *lb.Config) { c.CertHeader = "X Cert" })
	bad["header name with a colon"] = with(func(c *lb.Config) { c.CertHeader = "X-Cert:" })
	bad["header name that is the DN header"] = with(func(c *lb.Config) { c.CertHeader = strings.ToLower(contract.HeaderDN) })
	bad["header name that is the DN header with underscores"] = with(func(c *lb.Config) { c.CertHeader = "X_SSL_Client_DN" })
	// Bad input stays bad input where the configuration also asks for
	// what an implementation may not support.
	bad["empty truststore, with a CRL and a depth"] = with(func(c *lb.Config) {
		c.Truststore, c.CRL, c.VerifyDepth = nil, []byte("crl\n"), 3
	})
	bad["unknown mutation"] = with(func(c *lb.Config) { c.Mutations = []string{"no-such-mutation"} })
	for name, cfg := range bad {
		_, err := impl.Render(cfg, Server)
		switch {
		case err == nil:
			t.Errorf("%s: rendered", name)
		case errors.Is(err, contract.ErrNotSupported):
			t.Errorf("%s: reported as not supported (%v); it is bad input", name, err)
		}
	}
}

// mutations: every mutation is one of the catalogue and changes what at
// least one pinned configuration renders to (a mutation that changes
// nothing would be a useless mutant); one that cannot apply to a
// configuration says so with an error or leaves it as it is.
func mutations(t *testing.T, impl lb.Implementation, configs map[string]lb.Config) {
	if len(impl.Mutations()) == 0 {
		t.Fatal("no mutations: the self-test could prove nothing")
	}
	for name := range impl.Mutations() {
		if _, ok := lb.Catalogue[name]; !ok {
			t.Errorf("mutation %s is not in lb.Catalogue: add what it breaks there", name)
		}
		changed := false
		for _, cname := range slices.Sorted(maps.Keys(configs)) {
			cfg := configs[cname]
			base, err := impl.Render(cfg, Server)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Mutations = []string{name}
			mut, err := impl.Render(cfg, Server)
			if err != nil {
				continue
			}
			if mut.Key != base.Key {
				changed = true
			}
		}
		if !changed {
			t.Errorf("mutation %s changes no pinned configuration's rendering", name)
		}
	}
}

// slots renders every pinned configuration, with every mutation, into a
// slot: the slot's files live under its own folder, it listens on its own
// port and nowhere on 8443, and it names no file outside its folder. The
// Optional slot is pinned as testdata/golden/slot-optional.txt.
func slots(t *testing.T, m lb.Multiplexed, configs map[string]lb.Config) {
	if len(m.HostFiles()) == 0 || len(m.HostCommand()) == 0 || (m.Reload().Signal == "") == (len(m.Reload().Exec) == 0) || len(m.ConfigTest()) == 0 {
		t.Errorf("%s: the shared balancer is not described completely", m.Name())
	}
	eachRendered(m, configs, func(name string, muts []string, r lb.Rendered) {
		files, err := m.Slot(r, "s07", 8450)
		if err != nil {
			t.Errorf("%s %s %v: %v", m.Name(), name, muts, err)
			return
		}
		checkSlotFiles(t, m.Name()+" "+name+" "+strings.Join(muts, ","), "slots/s07", files)
		if name == "optional" && muts == nil {
			Compare(t, filepath.Join("testdata", "golden", "slot-optional.txt"), SlotText(files))
			separate(t, m, files)
		}
	})
}

// eachRendered renders every pinned configuration as it is and with each
// of the implementation's mutations alone, and hands over those that
// render (a mutation may have nothing to change in a configuration).
func eachRendered(impl lb.Implementation, configs map[string]lb.Config, check func(name string, muts []string, r lb.Rendered)) {
	for name, cfg := range configs {
		variants := [][]string{nil}
		for mut := range impl.Mutations() {
			variants = append(variants, []string{mut})
		}
		for _, muts := range variants {
			cfg := cfg
			cfg.Mutations = muts
			if r, err := impl.Render(cfg, Server); err == nil {
				check(name, muts, r)
			}
		}
	}
}

// separate: a slot run as a process of its own (lb.Separate, C23) has its
// files under own/<id>/ only, names no slot folder, keeps the slot's
// ports, and says how it starts and reloads.
func separate(t *testing.T, m lb.Multiplexed, slot map[string][]byte) {
	sep, ok := m.(lb.Separate)
	if !ok {
		return
	}
	files, start, reload, err := sep.Separate(slot, "s07")
	if err != nil {
		t.Fatalf("%s: a slot as a process of its own: %v", m.Name(), err)
	}
	if len(start) == 0 || len(reload) == 0 {
		t.Errorf("%s: a process of its own needs a start (%q) and a reload (%q)", m.Name(), start, reload)
	}
	var all strings.Builder
	for name, data := range files {
		if !strings.HasPrefix(name, lb.OwnDir("s07")+"/") {
			t.Errorf("%s: %s is outside %s", m.Name(), name, lb.OwnDir("s07"))
		}
		if strings.Contains(string(data), "slots/") {
			t.Errorf("%s: %s still names the slots folder", m.Name(), name)
		}
		all.Write(data)
	}
	for _, re := range slotPorts {
		if !re.MatchString(all.String()) {
			t.Errorf("%s: a process of its own does not listen on the slot's port %s", m.Name(), re)
		}
	}
}

// slotPorts: a slot listens on its port and its plain port (port +
// lb.PlainPortOffset), and on neither of a configuration of its own.
var (
	slotPorts = []*regexp.Regexp{regexp.MustCompile(`\b8450\b`), regexp.MustCompile(`\b18450\b`)}
	ownPorts  = regexp.MustCompile(`\b(8443|8088)\b`)
)

// processes renders every pinned configuration, with every mutation, as
// a process of its own (lb.Processes): as a slot, its files live under its
// own folder, it listens on its own ports and nowhere on 8443, and it names
// no file outside its folder; it says how it starts.
func processes(t *testing.T, p lb.Processes, configs map[string]lb.Config) {
	if len(p.HostCommand()) == 0 || p.HostReadyLog() == "" {
		t.Errorf("%s: the shared container is not described completely", p.Name())
	}
	eachRendered(p, configs, func(name string, muts []string, r lb.Rendered) {
		what := p.Name() + " " + name + " " + strings.Join(muts, ",")
		files, start, err := p.Process(r, "s07", 8450)
		if err != nil {
			t.Errorf("%s: %v", what, err)
			return
		}
		if len(start) == 0 {
			t.Errorf("%s: a process of its own needs a start command", what)
		}
		checkSlotFiles(t, what, lb.OwnDir("s07"), files)
	})
}

// checkSlotFiles: every file is under folder (relative to lb.ConfDir),
// the text names the slot's ports and not 8443 or 8088, and every path
// of lb.ConfDir it names is in folder.
func checkSlotFiles(t *testing.T, what, folder string, files map[string][]byte) {
	t.Helper()
	var text strings.Builder
	for name, data := range files {
		if !strings.HasPrefix(name, folder) {
			t.Errorf("%s: file %s is outside the slot", what, name)
		}
		if strings.HasSuffix(name, ".key") || strings.HasSuffix(name, ".pem") {
			continue
		}
		text.Write(data)
	}
	conf := text.String()
	for _, p := range slotPorts {
		if !p.MatchString(conf) {
			t.Errorf("%s: the slot does not name its port %s:\n%s", what, p, conf)
		}
	}
	if m := ownPorts.FindString(conf); m != "" {
		t.Errorf("%s: the slot still names port %s, which every slot would share:\n%s", what, m, conf)
	}
	for _, ref := range strings.Fields(strings.NewReplacer(`"`, " ", ";", " ", ",", " ").Replace(conf)) {
		inside := ref == lb.ConfDir+"/"+folder || strings.HasPrefix(ref, lb.ConfDir+"/"+folder+"/")
		if (ref == lb.ConfDir || strings.HasPrefix(ref, lb.ConfDir+"/")) && !inside {
			t.Errorf("%s: the slot names %s, outside its folder", what, ref)
		}
	}
	if len(files) == 0 {
		t.Errorf("%s: the slot has no files", what)
	}
}

// SlotText is a slot's configuration files, keys and certificates left
// out, as one text.
func SlotText(files map[string][]byte) string {
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if strings.HasSuffix(name, ".key") || strings.HasSuffix(name, ".pem") {
			continue
		}
		b.WriteString("=== " + name + "\n")
		b.Write(files[name])
	}
	return b.String()
}

// profile: named, refusing as the kit says, and every deviation with a
// reason, listed once, for a clause of the contract and a scenario of the
// suite that checks that clause (in that mode).
func profile(t *testing.T, impl lb.Implementation, k Kit) {
	p := impl.Profile()
	if p.Name == "" || p.Description == "" {
		t.Errorf("profile %+v has no name or description", p)
	}
	if p.Refusal != k.Refusal {
		t.Errorf("profile %s refuses by %q, want %q", p.Name, p.Refusal, k.Refusal)
	}
	scenarios, err := features.Scenarios()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, d := range p.Deviations {
		key := d.Key() + "/" + d.ScenarioID
		if seen[key] {
			t.Errorf("deviation %s listed twice: only the first would ever apply", key)
		}
		seen[key] = true
		if d.Reason == "" {
			t.Errorf("deviation %s has no reason", d.Key())
		}
		if _, ok := contract.LookupClause(d.Clause); !ok {
			t.Errorf("deviation %s names no clause of the contract", d.Key())
		}
		if d.Mode != "" && d.Mode != contract.Mandatory && d.Mode != contract.Optional {
			t.Errorf("deviation %s names mode %q", d.Key(), d.Mode)
		}
		found := false
		for _, s := range scenarios {
			if slices.Contains(s.Tags, "@"+d.Clause) && (d.ScenarioID == "" || slices.Contains(s.Tags, "@id:"+d.ScenarioID)) &&
				(d.Mode == "" || !slices.Contains(s.Tags, "@"+string(otherMode(d.Mode)))) {
				found = true
			}
		}
		if !found {
			t.Errorf("deviation %s (scenario id %q) matches no scenario of the suite: it can never apply", d.Key(), d.ScenarioID)
		}
	}
}

func otherMode(m contract.Mode) contract.Mode {
	if m == contract.Mandatory {
		return contract.Optional
	}
	return contract.Mandatory
}
