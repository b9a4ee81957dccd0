package queue

import (
	"encoding/json"
	"fmt"

	"github.com/hasadna/conductor"
)

// The request/reply services over NATS (the conductor's state for workers,
// each host's agent) answer with a Reply: a result, or an error with its
// code, so the asker gets the same *conductor.Error the server had.
type Reply struct {
	Result  json.RawMessage `json:"result,omitempty"`
	Code    string          `json:"code,omitempty"`
	Message string          `json:"message,omitempty"`
}

// EncodeReply makes the answer to a request: res as JSON, or err.
func EncodeReply(res any, err error) []byte {
	var rep Reply
	if err != nil {
		rep.Code, rep.Message = conductor.ErrorCode(err), conductor.ErrorMessage(err)
		if rep.Code == conductor.EINTERNAL {
			rep.Message = err.Error() // the asker shows or logs the cause
		}
	} else if res != nil {
		if rep.Result, err = json.Marshal(res); err != nil {
			rep.Code, rep.Message = conductor.EINTERNAL, "encode result: "+err.Error()
		}
	}
	data, _ := json.Marshal(rep)
	return data
}

// DecodeReply reads an answer into out (if not nil) or returns its error.
func DecodeReply(data []byte, out any) error {
	var rep Reply
	if err := json.Unmarshal(data, &rep); err != nil {
		return fmt.Errorf("bad reply: %w", err)
	}
	if rep.Code != "" {
		return &conductor.Error{Code: rep.Code, Message: rep.Message}
	}
	if out != nil && len(rep.Result) > 0 {
		if err := json.Unmarshal(rep.Result, out); err != nil {
			return fmt.Errorf("decode reply: %w", err)
		}
	}
	return nil
}
