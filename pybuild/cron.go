package pybuild

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/internal/safefs"
)

// CronEntries reads app.json's "cron" list at the top of the release at
// dir (read without following a link, like its healthchecks) and
// validates it: a bad entry fails with app.json's line, the entry's number
// and schedule, and what is wrong. No app.json or no list: none.
func CronEntries(dir string) ([]conductor.CronEntry, error) {
	data, err := safefs.ReadFile(dir, "app.json", maxSmall)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case errors.Is(err, safefs.ErrSymlink):
		return nil, invalidf("app.json is a symbolic link: it must be a regular file")
	case err != nil:
		return nil, invalidf("app.json: %s", readProblem(err))
	}
	return ParseAppJSONCron(data)
}

// ParseAppJSONCron reads the "cron" key of app.json (Dokku's shape):
//
//	{"cron": [{"command": "python manage.py clearsessions", "schedule": "@daily"}]}
func ParseAppJSONCron(data []byte) ([]conductor.CronEntry, error) {
	var doc struct {
		Cron json.RawMessage `json:"cron"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, invalidf("app.json: %v", jsonProblem(err))
	}
	if len(doc.Cron) == 0 || string(doc.Cron) == "null" {
		return nil, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(doc.Cron, &items); err != nil {
		return nil, invalidf(`app.json: cron must be a list of {"command": …, "schedule": …}`)
	}
	lines := cronLines(data, len(items))
	return conductor.ParseCronEntries(items, func(i int) string {
		if i < len(lines) && lines[i] > 0 {
			return fmt.Sprintf("app.json line %d: cron entry %d", lines[i], i+1)
		}
		return fmt.Sprintf("app.json: cron entry %d", i+1)
	})
}

// cronLines finds the line each item of the top-level "cron" list starts
// on, so an error points at it (0 where it cannot tell).
func cronLines(data []byte, n int) []int {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return nil
		}
		if key != "cron" {
			var skip json.RawMessage
			if dec.Decode(&skip) != nil {
				return nil
			}
			continue
		}
		if t, err := dec.Token(); err != nil || t != json.Delim('[') {
			return nil
		}
		var lines []int
		for dec.More() && len(lines) < n {
			off := int(dec.InputOffset())
			for off < len(data) && bytes.IndexByte([]byte(" \t\r\n,"), data[off]) >= 0 {
				off++
			}
			lines = append(lines, bytes.Count(data[:min(off, len(data))], []byte("\n"))+1)
			var skip json.RawMessage
			if dec.Decode(&skip) != nil {
				return lines
			}
		}
		return lines
	}
	return nil
}
