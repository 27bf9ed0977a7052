package examples

import (
	"bytes"
	"debug/elf"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/greipsec/greipsec/dataplane"
	"github.com/greipsec/greipsec/gateway/config"
)

// The container image and the Kubernetes example, checked without a
// container engine or a cluster: the Dockerfile's build command is run as
// it is written and its binary must be static; the final image must run as
// a numeric non-root user; the manifest must meet the "restricted" Pod
// Security Standard and carry a configuration that needs no privilege.

// TestDockerfile runs the Dockerfile's go build command, as written there,
// and checks the binary is static, and that the image it makes is scratch
// (or distroless static) run as a numeric non-root user.
func TestDockerfile(t *testing.T) {
	text, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	stages := regexp.MustCompile(`(?m)^FROM\s+(\S+)`).FindAllStringSubmatch(string(text), -1)
	if len(stages) < 2 {
		t.Fatalf("want a build stage and an image stage, got %v", stages)
	}
	if final := stages[len(stages)-1][1]; final != "scratch" && !strings.HasPrefix(final, "gcr.io/distroless/static") {
		t.Errorf("the image is based on %s, want scratch or distroless static", final)
	}
	last := string(text[strings.LastIndex(string(text), "\nFROM "):])
	user := regexp.MustCompile(`(?m)^USER\s+(\d+)(?::(\d+))?\s*$`).FindStringSubmatch(last)
	if user == nil {
		t.Fatal("the image stage sets no numeric USER")
	}
	if uid, _ := strconv.Atoi(user[1]); uid == 0 {
		t.Errorf("USER %s is root", user[1])
	}

	build := regexp.MustCompile(`(?m)^RUN (CGO_ENABLED=0 go build .*)$`).FindStringSubmatch(string(text))
	if build == nil {
		t.Fatal("no RUN CGO_ENABLED=0 go build line")
	}
	args := splitShell(t, build[1])
	if !slices.Contains(args, "-trimpath") {
		t.Errorf("the build does not use -trimpath: %s", build[1])
	}
	out := filepath.Join(t.TempDir(), "greipsec")
	i := slices.Index(args, "-o")
	if i < 0 || i+1 >= len(args) {
		t.Fatalf("no -o in %q", build[1])
	}
	args[i+1] = out
	env, cmdArgs := args[:1], args[1:] // CGO_ENABLED=0, then go build ...
	cmd := exec.Command(cmdArgs[0], cmdArgs[1:]...)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", build[1], err, b)
	}
	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary is not static: it has a %v program header", p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs %v", libs)
	}
	version, err := exec.Command(out, "version").CombinedOutput()
	if err != nil {
		t.Errorf("greipsec version: %v\n%s", err, version)
	}
	t.Logf("%s: %s", build[1], bytes.TrimSpace(version))
}

// splitShell splits a shell command line of words and single-quoted words.
func splitShell(t *testing.T, s string) []string {
	var words []string
	for _, m := range regexp.MustCompile(`'([^']*)'|(\S+)`).FindAllStringSubmatch(s, -1) {
		if m[2] != "" {
			if strings.ContainsAny(m[2], `"$\`+"`") {
				t.Fatalf("the build line %q needs a shell to read", s)
			}
			words = append(words, m[2])
		} else {
			words = append(words, m[1])
		}
	}
	return words
}

// manifest is what the test reads of the Kubernetes objects.
type manifest struct {
	Kind     string            `yaml:"kind"`
	Data     map[string]string `yaml:"data"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		Template struct {
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	HostNetwork     bool             `yaml:"hostNetwork"`
	HostPID         bool             `yaml:"hostPID"`
	HostIPC         bool             `yaml:"hostIPC"`
	SecurityContext *securityContext `yaml:"securityContext"`
	Containers      []container      `yaml:"containers"`
	InitContainers  []container      `yaml:"initContainers"`
	Volumes         []map[string]any `yaml:"volumes"`
}

type container struct {
	Name            string           `yaml:"name"`
	SecurityContext *securityContext `yaml:"securityContext"`
	Ports           []struct {
		HostPort int `yaml:"hostPort"`
	} `yaml:"ports"`
	Env []struct {
		Name string `yaml:"name"`
	} `yaml:"env"`
}

type securityContext struct {
	RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
	RunAsUser                *int  `yaml:"runAsUser"`
	Privileged               *bool `yaml:"privileged"`
	AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
	ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
	SeccompProfile           *struct {
		Type string `yaml:"type"`
	} `yaml:"seccompProfile"`
	Capabilities *struct {
		Add  []string `yaml:"add"`
		Drop []string `yaml:"drop"`
	} `yaml:"capabilities"`
}

// TestKubernetesRestricted checks examples/kubernetes/greipsec.yaml against
// the "restricted" Pod Security Standard (kubernetes.io/docs/concepts/
// security/pod-security-standards): no host namespaces or host ports, only
// the allowed volume types, non-root, no privilege escalation, every
// capability dropped (none added but NET_BIND_SERVICE), seccomp
// RuntimeDefault; and, beyond it, a read-only root file system. The
// greipsec configuration in its ConfigMap must parse and need no
// privilege at all.
func TestKubernetesRestricted(t *testing.T) {
	f, err := os.Open("kubernetes/greipsec.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	var deployments, configs int
	for {
		var m manifest
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch m.Kind {
		case "ConfigMap":
			configs++
			checkUnprivilegedConfig(t, m.Data["greipsec.toml"])
		case "Deployment":
			deployments++
			checkRestricted(t, m.Metadata.Name, &m.Spec.Template.Spec)
		}
	}
	if deployments != 1 || configs != 1 {
		t.Errorf("%d Deployments and %d ConfigMaps, want one each", deployments, configs)
	}
}

func checkRestricted(t *testing.T, name string, pod *podSpec) {
	t.Helper()
	if pod.HostNetwork || pod.HostPID || pod.HostIPC {
		t.Errorf("%s: host namespaces", name)
	}
	psc := pod.SecurityContext
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != "RuntimeDefault" {
		t.Errorf("%s: the pod's seccompProfile is not RuntimeDefault", name)
	}
	for _, v := range pod.Volumes {
		for k := range v {
			if k != "name" && !slices.Contains([]string{"configMap", "secret", "emptyDir", "projected", "downwardAPI", "csi", "persistentVolumeClaim", "ephemeral"}, k) {
				t.Errorf("%s: volume %v of type %s, which the restricted profile forbids", name, v["name"], k)
			}
		}
	}
	containers := append(slices.Clone(pod.Containers), pod.InitContainers...)
	if len(containers) == 0 {
		t.Fatalf("%s: no containers", name)
	}
	for _, c := range containers {
		sc := c.SecurityContext
		if sc == nil {
			t.Errorf("%s/%s: no securityContext", name, c.Name)
			continue
		}
		nonRoot := sc.RunAsNonRoot != nil && *sc.RunAsNonRoot || sc.RunAsNonRoot == nil && psc != nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot
		uid := sc.RunAsUser
		if uid == nil && psc != nil {
			uid = psc.RunAsUser
		}
		if !nonRoot || uid != nil && *uid == 0 {
			t.Errorf("%s/%s: may run as root", name, c.Name)
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Errorf("%s/%s: privileged", name, c.Name)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s/%s: allowPrivilegeEscalation is not false", name, c.Name)
		}
		if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) {
			t.Errorf("%s/%s: capabilities do not drop ALL", name, c.Name)
		} else if len(slices.DeleteFunc(slices.Clone(sc.Capabilities.Add), func(s string) bool { return s == "NET_BIND_SERVICE" })) > 0 {
			t.Errorf("%s/%s: adds capabilities %v", name, c.Name, sc.Capabilities.Add)
		}
		if sc.SeccompProfile != nil && sc.SeccompProfile.Type != "RuntimeDefault" && sc.SeccompProfile.Type != "Localhost" {
			t.Errorf("%s/%s: seccompProfile %s", name, c.Name, sc.SeccompProfile.Type)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s/%s: the root file system is writable", name, c.Name)
		}
		for _, p := range c.Ports {
			if p.HostPort != 0 {
				t.Errorf("%s/%s: hostPort %d", name, c.Name, p.HostPort)
			}
		}
	}
}

// checkUnprivilegedConfig parses a configuration and checks that it needs
// no privilege: a netstack inner side, ESP-in-UDP, IKE without port 500,
// every port from 1024.
func checkUnprivilegedConfig(t *testing.T, text string) {
	t.Helper()
	t.Setenv("GREIPSEC_PSK", "test-psk-from-the-secret")
	cfg, err := config.Parse("configmap/greipsec.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	for _, tu := range cfg.Tunnels {
		dp := tu.Dataplane
		if tu.Inner != config.InnerNetstack || dp.Transport != dataplane.TransportUDP || dp.UDPPort < 1024 ||
			tu.IKE == nil || !tu.IKE.StartNATT {
			t.Errorf("tunnel %s needs privileges: inner %v, transport %v, udp-port %d", dp.Name, tu.Inner, dp.Transport, dp.UDPPort)
		}
		if px := tu.Netstack.SOCKS5; px == nil || !strings.HasPrefix(px.Listen, "127.0.0.1:") {
			t.Errorf("tunnel %s: the SOCKS5 proxy is not on the pod's loopback", dp.Name)
		}
	}
}
