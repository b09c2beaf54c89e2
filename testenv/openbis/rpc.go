package openbis

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// APIPath is where openBIS serves its V3 JSON-RPC API (the ELN's openbis.js
// facade, pybis and the JupyterHub image's authenticator all post here).
const APIPath = "/openbis/openbis/rmi-application-server-v3.json"

// JSON-RPC 2.0 error codes, as jsonrpc4j (openBIS's JSON-RPC layer) uses them.
const (
	codeParseError     = -32700
	codeInvalidRequest = -32600
	codeMethodNotFound = -32601
	codeInvalidParams  = -32602
)

// Exception type names put into error data, as openBIS reports them.
const (
	userFailure      = "ch.systemsx.cisd.common.exceptions.UserFailureException"
	illegalArgument  = "java.lang.IllegalArgumentException"
	jsonParseFailure = "com.fasterxml.jackson.core.JsonParseException"
)

// maxRequest bounds a request body; the API calls here are tiny.
const maxRequest = 1 << 20

type rpcRequest struct {
	ID      json.RawMessage   `json:"id"`
	JSONRPC string            `json:"jsonrpc"`
	Method  string            `json:"method"`
	Params  []json.RawMessage `json:"params"`
}

// rpcResponse always carries "result" on success, null included: openBIS
// answers a failed login with "result": null, and clients test for it.
type rpcResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  any             `json:"result"`
}

type rpcErrorResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Error   rpcError        `json:"error"`
}

type rpcError struct {
	Code    int          `json:"code"`
	Message string       `json:"message"`
	Data    rpcErrorData `json:"data"`
}

type rpcErrorData struct {
	ExceptionTypeName string `json:"exceptionTypeName"`
	Message           string `json:"message"`
}

// httpStatus maps an error code to the HTTP status jsonrpc4j's default
// provider sends with it.
func (e rpcError) httpStatus() int {
	switch e.Code {
	case codeInvalidRequest:
		return http.StatusBadRequest
	case codeMethodNotFound:
		return http.StatusNotFound
	default:
		return http.StatusInternalServerError
	}
}

func newError(code int, typ, format string, args ...any) *rpcError {
	msg := fmt.Sprintf(format, args...)
	return &rpcError{Code: code, Message: msg, Data: rpcErrorData{ExceptionTypeName: typ, Message: msg}}
}

// SessionInformation is the V3 DTO as.dto.session.SessionInformation, with
// the fields the JupyterHub image and pybis read.
type SessionInformation struct {
	Type                       string  `json:"@type"`
	SessionToken               string  `json:"sessionToken"`
	UserName                   string  `json:"userName"`
	HomeGroupCode              *string `json:"homeGroupCode"`
	PersonalAccessTokenSession bool    `json:"personalAccessTokenSession"`
	Person                     any     `json:"person"`
	CreatorPerson              any     `json:"creatorPerson"`
}

// sessions is the server's table of live session tokens.
type sessions struct {
	mu     sync.Mutex
	byTok  map[string]string // token → user
	now    func() time.Time
	random io.Reader
}

// newToken shapes a token as openBIS does: the user, '-', the login time as
// yyMMddHHmmssSSS, 'x' and 32 upper-case hex digits
// (e.g. alice-251201120000000x1A2B…). Clients rely on the user prefix:
// openbis.js checks sessionToken.indexOf(user), the ELN cuts the user id
// off at the last '-'.
func (s *sessions) newToken(user string) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(s.random, b[:]); err != nil {
		return "", fmt.Errorf("session token: %w", err)
	}
	t := s.now()
	stamp := t.Format("060102150405") + fmt.Sprintf("%03d", t.Nanosecond()/int(time.Millisecond))
	return user + "-" + stamp + "x" + strings.ToUpper(hex.EncodeToString(b[:])), nil
}

func (s *sessions) login(user string) (string, error) {
	tok, err := s.newToken(user)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byTok[tok] = user
	return tok, nil
}

func (s *sessions) user(tok string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.byTok[tok]
	return u, ok
}

func (s *sessions) logout(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byTok, tok)
}

// serveAPI answers one JSON-RPC call. The body is read as JSON whatever its
// Content-Type: openbis.js posts JSON under jQuery's default form type.
func (srv *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "the JSON-RPC API takes POST", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequest))
	if err != nil {
		writeRPCError(w, nil, newError(codeParseError, jsonParseFailure, "read request: %v", err))
		return
	}
	var req rpcRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		writeRPCError(w, nil, newError(codeParseError, jsonParseFailure, "parse request: %v", err))
		return
	}
	if req.Method == "" {
		writeRPCError(w, req.ID, newError(codeInvalidRequest, illegalArgument, "request has no method"))
		return
	}
	result, rerr := srv.call(req.Method, req.Params)
	if rerr != nil {
		writeRPCError(w, req.ID, rerr)
		return
	}
	writeJSON(w, http.StatusOK, rpcResponse{JSONRPC: "2.0", ID: idOrNull(req.ID), Result: result})
}

// call dispatches a method of the V3 API the stand-in keeps.
func (srv *Server) call(method string, params []json.RawMessage) (any, *rpcError) {
	switch method {
	case "login":
		var user, password string
		if err := bindParams(method, params, &user, &password); err != nil {
			return nil, err
		}
		// openBIS answers bad credentials with a null token, not an error.
		want, ok := srv.users[user]
		if !ok || want != password {
			return nil, nil
		}
		tok, err := srv.sessions.login(user)
		if err != nil {
			return nil, newError(codeInvalidParams, userFailure, "%v", err)
		}
		return tok, nil
	case "isSessionActive":
		var tok string
		if err := bindParams(method, params, &tok); err != nil {
			return nil, err
		}
		_, ok := srv.sessions.user(tok)
		return ok, nil
	case "getSessionInformation":
		var tok string
		if err := bindParams(method, params, &tok); err != nil {
			return nil, err
		}
		user, ok := srv.sessions.user(tok)
		if !ok {
			return nil, nil
		}
		return SessionInformation{
			Type:         "as.dto.session.SessionInformation",
			SessionToken: tok,
			UserName:     user,
		}, nil
	case "logout":
		var tok string
		if err := bindParams(method, params, &tok); err != nil {
			return nil, err
		}
		srv.sessions.logout(tok)
		return nil, nil
	case "getServerPublicInformation":
		// Needs no session: what health checks call.
		if err := bindParams(method, params); err != nil {
			return nil, err
		}
		return map[string]string{"authentication-service": "stand-in users file"}, nil
	default:
		return nil, newError(codeMethodNotFound, illegalArgument, "method not found: %s", method)
	}
}

// bindParams decodes positional parameters, all of which must be present.
func bindParams(method string, params []json.RawMessage, dst ...*string) *rpcError {
	if len(params) != len(dst) {
		return newError(codeInvalidParams, illegalArgument, "%s takes %d parameter(s), got %d", method, len(dst), len(params))
	}
	for i, raw := range params {
		if err := json.Unmarshal(raw, dst[i]); err != nil || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
			return newError(codeInvalidParams, illegalArgument, "%s: parameter %d must be a string", method, i+1)
		}
	}
	return nil
}

func idOrNull(id json.RawMessage) json.RawMessage {
	if len(id) == 0 {
		return json.RawMessage("null")
	}
	return id
}

func writeRPCError(w http.ResponseWriter, id json.RawMessage, e *rpcError) {
	writeJSON(w, e.httpStatus(), rpcErrorResponse{JSONRPC: "2.0", ID: idOrNull(id), Error: *e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
