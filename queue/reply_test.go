package queue

import (
	"errors"
	"fmt"
	"testing"

	"github.com/hasadna/conductor"
)

func TestReplyRoundTrip(t *testing.T) {
	var got []string
	if err := DecodeReply(EncodeReply([]string{"a", "b"}, nil), &got); err != nil || len(got) != 2 || got[1] != "b" {
		t.Errorf("result: %v, %v", got, err)
	}
	// A coded error comes back with its code and message.
	err := DecodeReply(EncodeReply(nil, conductor.Errorf(conductor.ENOTFOUND, "app %q not found", "x")), &got)
	if conductor.ErrorCode(err) != conductor.ENOTFOUND || conductor.ErrorMessage(err) != `app "x" not found` {
		t.Errorf("coded error: %v", err)
	}
	// An internal error keeps its cause for the asker's log.
	err = DecodeReply(EncodeReply(nil, fmt.Errorf("open db: %w", errors.New("disk full"))), nil)
	if conductor.ErrorCode(err) != conductor.EINTERNAL || err.Error() != "open db: disk full" {
		t.Errorf("internal error: %v", err)
	}
	if err := DecodeReply([]byte("not json"), nil); err == nil {
		t.Error("garbage decoded")
	}
	if err := DecodeReply(EncodeReply(nil, nil), &got); err != nil {
		t.Errorf("empty result: %v", err)
	}
}
