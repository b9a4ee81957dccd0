package pybuild

import (
	"slices"
	"testing"
)

func TestSettingsCandidates(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string
	}{
		{"startproject", `os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hello.settings")`, []string{"hello.settings"}},
		{"single quotes", `os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings.local')`, []string{"config.settings.local"}},
		{"split across lines", "os.environ.setdefault(\n    'DJANGO_SETTINGS_MODULE',\n    'legacy.settings'\n)\n", []string{"legacy.settings"}},
		{"trailing comma and comment", "os.environ.setdefault(\n  \"DJANGO_SETTINGS_MODULE\",  # which settings\n  \"a.b\",\n)", []string{"a.b"}},
		{"assignment", `os.environ["DJANGO_SETTINGS_MODULE"] = "mysite.settings.dev"`, []string{"mysite.settings.dev"}},
		{"assignment spaced", "os.environ[ 'DJANGO_SETTINGS_MODULE' ]  =  'x.y'", []string{"x.y"}},
		{"dict of defaults", "DEFAULTS = {\n    \"DJANGO_SETTINGS_MODULE\": \"blog.settings\",\n    \"DEBUG\": \"1\",\n}\nfor k, v in DEFAULTS.items():\n    os.environ.setdefault(k, v)\n", []string{"blog.settings"}},
		{"keyword", `os.environ.update(DJANGO_SETTINGS_MODULE="shop.settings")`, []string{"shop.settings"}},
		{"variable", "SETTINGS = 'proj.settings.prod'\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', SETTINGS)\n", []string{"proj.settings.prod"}},
		{"getenv default", `os.environ.setdefault("DJANGO_SETTINGS_MODULE", os.getenv("SETTINGS", "legacy.settings"))`, []string{"legacy.settings"}},
		{"environ default kwarg", `env("DJANGO_SETTINGS_MODULE", default="config.settings.production")`, []string{"config.settings.production"}},
		{"implicit concatenation", `os.environ.setdefault("DJANGO_SETTINGS_MODULE", ("config.settings." "local"))`, []string{"config.settings.local"}},
		{"raw string", `os.environ.setdefault(r"DJANGO_SETTINGS_MODULE", r"a.b")`, []string{"a.b"}},
		{"putenv", `os.putenv("DJANGO_SETTINGS_MODULE", "a.settings")`, []string{"a.settings"}},
		{"several", "if TESTING:\n    os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'a.test')\nelse:\n    os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'a.local')\n", []string{"a.test", "a.local"}},
		{"comment only", `# os.environ.setdefault("DJANGO_SETTINGS_MODULE", "old.settings")`, nil},
		{"docstring mention", `"""Set DJANGO_SETTINGS_MODULE to "x.settings" to run."""`, nil},
		{"read, not set", `m = os.environ["DJANGO_SETTINGS_MODULE"]`, nil},
		{"get without default", `os.environ.get("DJANGO_SETTINGS_MODULE")`, nil},
		{"comparison", `if os.environ["DJANGO_SETTINGS_MODULE"] == "a.b": pass`, nil},
		{"f-string", `os.environ.setdefault("DJANGO_SETTINGS_MODULE", f"{name}.settings")`, nil},
		{"formatted", `os.environ.setdefault("DJANGO_SETTINGS_MODULE", "%s.settings" % name)`, nil},
		{"format method", `os.environ.setdefault("DJANGO_SETTINGS_MODULE", "{}.settings".format(name))`, nil},
		{"unterminated string", "x = 'abc\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'a.b')", []string{"a.b"}},
		{"escaped quote before", `s = "a\"b"; os.environ.setdefault("DJANGO_SETTINGS_MODULE", "a.b")`, []string{"a.b"}},
		{"triple quoted before", "'''it's\n\"quoted\"'''\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'a.b')", []string{"a.b"}},
		{"empty", ``, nil},
		{"garbage", "\x00\xff(((([[[", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := settingsCandidates(tt.src); !slices.Equal(got, tt.want) {
				t.Errorf("settingsCandidates(%q) = %q, want %q", tt.src, got, tt.want)
			}
		})
	}
}

func FuzzSettingsCandidates(f *testing.F) {
	f.Add(`os.environ.setdefault("DJANGO_SETTINGS_MODULE", "a.b")`)
	f.Add("os.environ['DJANGO_SETTINGS_MODULE'] = ('a' 'b')")
	f.Add(`x = f"""{y}"""; env("DJANGO_SETTINGS_MODULE", os.getenv("A", default=(("b"))))`)
	f.Fuzz(func(t *testing.T, src string) {
		for _, c := range settingsCandidates(src) {
			_ = ValidModule(c)
		}
	})
}
