// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap

import (
	"bufio"
	"bytes"
	"io"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/jimlambrt/gldap/internal/assert"
	"github.com/jimlambrt/gldap/internal/require"
)

// dirgate patch 9: upstream's Test_newResponseWriter is gone. The writer,
// its lock and the logger are now the connection's (entries are buffered
// per connection), so newResponseWriter takes the conn and cannot fail.

func TestResponseWriter_Write(t *testing.T) {
	tests := []struct {
		name            string
		logger          hclog.Logger
		response        Response
		want            string
		wantErr         bool
		wantErrIs       error
		wantErrContains string
	}{
		{
			name: "missing-response",
			logger: hclog.New(&hclog.LoggerOptions{
				Name:  "TestResponseWriter_Write-logger",
				Level: hclog.Error,
			}),
			wantErr:         true,
			wantErrIs:       ErrInvalidParameter,
			wantErrContains: "missing response",
		},
		{
			name: "valid",
			logger: hclog.New(&hclog.LoggerOptions{
				Name:   "TestResponseWriter_Write-logger",
				Level:  hclog.Debug,
				Output: func() io.Writer { var buf bytes.Buffer; return bufio.NewWriter(&buf) }(),
			}),
			response: &testResponse{
				baseResponse: &baseResponse{
					messageID: 1,
				},
				data: "test",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert, require := assert.New(t), require.New(t)
			var buf bytes.Buffer
			// dirgate patch 9: the response writer writes through its
			// connection's buffer, not a bufio.Writer of its own.
			w := newResponseWriter(&conn{out: &buf, logger: tc.logger, connID: 1}, 1)
			err := w.Write(tc.response)
			if tc.wantErr {
				require.Error(err)
				if tc.wantErrIs != nil {
					assert.ErrorIs(err, tc.wantErrIs)
				}
				if tc.wantErrContains != "" {
					assert.Contains(err.Error(), tc.wantErrContains)
				}
				return
			}
			require.NoError(err)
			assert.Equal(tc.response.packet().Bytes(), buf.Bytes())
		})
	}
}

func Test_baseResponse(t *testing.T) {
	assert := assert.New(t)
	b := &baseResponse{}
	t.Run("SetResultCode", func(t *testing.T) {
		b.SetResultCode(42)
		assert.Equal(int16(42), b.code)
	})
	t.Run("SetDiagnosticMessage", func(t *testing.T) {
		b.SetDiagnosticMessage("test")
		assert.Equal("test", b.diagMessage)
	})
	t.Run("SetMatchedDN", func(t *testing.T) {
		b.SetMatchedDN("matched")
		assert.Equal("matched", b.matchedDN)
	})
}

type testResponse struct {
	*baseResponse
	data string
}

func (r *testResponse) packet() *packet {
	p := beginResponse(r.messageID)
	addOptionalResponseChildren(p, WithDiagnosticMessage(r.data))
	return &packet{Packet: p}
}

// TestResultCode: dirgate patch 19. Every response with a result reads back
// the code it will send.
func TestResultCode(t *testing.T) {
	type coded interface {
		Response
		SetResultCode(int)
		ResultCode() int
	}
	for name, r := range map[string]coded{
		"general":  &GeneralResponse{baseResponse: &baseResponse{}},
		"extended": &ExtendedResponse{baseResponse: &baseResponse{}},
		"bind":     &BindResponse{baseResponse: &baseResponse{}},
		"done":     &SearchResponseDone{baseResponse: &baseResponse{}},
	} {
		t.Run(name, func(t *testing.T) {
			for _, code := range []int{ResultSuccess, ResultCompareTrue, ResultUnavailableCriticalExtension, ResultOther} {
				r.SetResultCode(code)
				if got := r.ResultCode(); got != code {
					t.Errorf("ResultCode() = %d after SetResultCode(%d)", got, code)
				}
			}
		})
	}
}
