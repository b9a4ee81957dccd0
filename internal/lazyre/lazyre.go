// Package lazyre compiles a package-level regular expression on its first
// use instead of at program start. The conductor binary starts briefly and
// often (the git hook on every push, the launcher of every app process), and
// compiling every package's patterns at start — counted repetitions such as
// {0,61} or {16,256} compile into long programs — was about a third of each
// start's CPU.
package lazyre

import (
	"regexp"
	"sync"
)

// Regexp is a regexp.Regexp compiled when first used.
type Regexp struct {
	expr string
	once sync.Once
	re   *regexp.Regexp
}

var (
	mu  sync.Mutex
	all []*Regexp // every pattern made, for CompileAll
)

// New returns expr, to be compiled on first use; a bad expression panics
// then, as regexp.MustCompile does (CompileAll finds it in a test).
func New(expr string) *Regexp {
	r := &Regexp{expr: expr}
	mu.Lock()
	all = append(all, r)
	mu.Unlock()
	return r
}

// Compiled returns the compiled expression.
func (r *Regexp) Compiled() *regexp.Regexp {
	r.once.Do(func() { r.re = regexp.MustCompile(r.expr) })
	return r.re
}

// CompileAll compiles every pattern made so far and returns how many there
// are, or the first that does not compile: for a test of a binary that
// links them all.
func CompileAll() (int, error) {
	mu.Lock()
	defer mu.Unlock()
	for _, r := range all {
		if _, err := regexp.Compile(r.expr); err != nil {
			return 0, err
		}
	}
	return len(all), nil
}

func (r *Regexp) String() string             { return r.expr }
func (r *Regexp) MatchString(s string) bool  { return r.Compiled().MatchString(s) }
func (r *Regexp) Match(b []byte) bool        { return r.Compiled().Match(b) }
func (r *Regexp) FindString(s string) string { return r.Compiled().FindString(s) }
func (r *Regexp) FindStringSubmatch(s string) []string {
	return r.Compiled().FindStringSubmatch(s)
}
func (r *Regexp) FindAllString(s string, n int) []string {
	return r.Compiled().FindAllString(s, n)
}
func (r *Regexp) FindAllStringSubmatch(s string, n int) [][]string {
	return r.Compiled().FindAllStringSubmatch(s, n)
}
func (r *Regexp) FindSubmatch(b []byte) [][]byte { return r.Compiled().FindSubmatch(b) }
func (r *Regexp) FindAllSubmatch(b []byte, n int) [][][]byte {
	return r.Compiled().FindAllSubmatch(b, n)
}
func (r *Regexp) ReplaceAllString(src, repl string) string {
	return r.Compiled().ReplaceAllString(src, repl)
}
func (r *Regexp) ReplaceAll(src, repl []byte) []byte { return r.Compiled().ReplaceAll(src, repl) }
func (r *Regexp) SubexpNames() []string              { return r.Compiled().SubexpNames() }
func (r *Regexp) SubexpIndex(name string) int        { return r.Compiled().SubexpIndex(name) }
