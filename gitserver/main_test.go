package gitserver

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/hasadna/conductor/queue"
)

// One embedded NATS server for the package's tests: commands that talk to
// a host's worker (logs, deploys:cancel) get a real queue with no worker
// behind it, as when a host is down.
var (
	natsDir   string
	natsOnce  sync.Once
	testQ     *queue.Queue
	testQErr  error
	natsServe *queue.Server
)

func TestMain(m *testing.M) {
	code := m.Run()
	if testQ != nil {
		testQ.Close()
		natsServe.Shutdown()
	}
	if natsDir != "" {
		os.RemoveAll(natsDir)
	}
	os.Exit(code)
}

func testQueue(t testing.TB) *queue.Queue {
	t.Helper()
	natsOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gitserver-nats-")
		if err != nil {
			testQErr = err
			return
		}
		natsDir = dir
		natsServe, err = queue.StartServer("127.0.0.1:0", dir, "gitserver-test-token", nil)
		if err != nil {
			testQErr = fmt.Errorf("start nats: %w", err)
			return
		}
		testQ, testQErr = queue.Connect(context.Background(), queue.Conn{URLs: natsServe.ClientURL(), Token: "gitserver-test-token"}, "gitserver-test")
	})
	if testQErr != nil {
		t.Fatal(testQErr)
	}
	return testQ
}
