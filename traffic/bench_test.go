package traffic

import (
	"strconv"
	"testing"
	"time"
)

// BenchmarkParseAdd is what serve spends per request nginx logs: reading
// the line and counting it in its minute.
func BenchmarkParseAdd(b *testing.B) {
	s := &Stats{}
	line := []byte(`{"time":` + strconv.FormatInt(time.Now().Unix(), 10) + `.123,"app":"shop","host":"shop.example.org","method":"GET","status":200,"request_time":0.004,"upstream_response_time":"0.004","bytes":612}`)
	b.ReportAllocs()
	for b.Loop() {
		r, err := Parse(line)
		if err != nil {
			b.Fatal(err)
		}
		s.Add(r)
	}
}
