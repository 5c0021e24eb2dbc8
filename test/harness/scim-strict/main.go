// A strict SCIM 2.0 service provider for tests: the protocol (routing, schema validation of
// resources, PATCH path and value validation, filter parsing and evaluation with the schema's case
// rules, ListResponse, discovery) is github.com/elimity-com/scim's; store.go and patch.go are the
// in-memory storage the library asks its users to provide. This file adds what the tests need
// around it: bearer authentication, injected faults, a request log and an admin API.
//
//	scim-strict --token T [--max-page-size N]
//
// Listens on a free port of 127.0.0.1 and prints one line {"baseURL": ..., "adminURL": ...}.
// SCIM is served under /scim/v2; the admin API (no authentication) under /_harness:
//
//	GET    /_harness/requests?since=N  the request log from entry N: {total, entries}
//	GET    /_harness/store             {users, groups} as stored, with id and meta (version: writes)
//	PUT    /_harness/users/{id}        store a User as given, unvalidated ("by hand"); same for groups
//	DELETE /_harness/users/{id}        delete a User without touching Groups; same for groups
//	POST   /_harness/reset             forget every resource, fault and trigger (the log stays)
//	POST   /_harness/faults            {kind: fail|throttle|delay|drop, n, status, seconds, ms}
//	DELETE /_harness/faults            forget pending faults; GET gives {pending}
//	POST   /_harness/triggers          {method, path, users, faults}: on the next request whose
//	                                   method and path (suffix) match, first store the users, then
//	                                   queue the faults ahead of the others (a concurrent writer)
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/elimity-com/scim"
	"github.com/elimity-com/scim/optional"
	"github.com/elimity-com/scim/schema"
)

const mount = "/scim/v2"

type entry struct {
	Method string  `json:"method"`
	Path   string  `json:"path"`
	At     float64 `json:"at"` // ms since the epoch, as Date.now()
	Status int     `json:"status"`
	Body   any     `json:"body,omitempty"`
}

type fault struct {
	Kind    string `json:"kind"`
	N       int    `json:"n"`
	Status  int    `json:"status"`
	Seconds int    `json:"seconds"`
	Ms      int    `json:"ms"`
}

type trigger struct {
	Method string           `json:"method"`
	Path   string           `json:"path"`
	Users  []map[string]any `json:"users"`
	Faults []fault          `json:"faults"`
}

type harness struct {
	st       *store
	users    *handler
	groups   *handler
	mu       sync.Mutex
	log      []*entry
	faults   []fault // one per request to come
	triggers []trigger
}

func expand(f fault) []fault {
	out := make([]fault, max(f.N, 0))
	for i := range out {
		out[i] = f
	}
	return out
}

// next records a request, runs a matching trigger and takes the fault for it, if any.
func (h *harness) next(e *entry, path string) (fault, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.log = append(h.log, e)
	for i, t := range h.triggers {
		if !strings.EqualFold(t.Method, e.Method) || !strings.HasSuffix(path, t.Path) {
			continue
		}
		h.triggers = append(h.triggers[:i], h.triggers[i+1:]...)
		for _, u := range t.Users {
			h.putRaw(h.users, u)
		}
		var queued []fault
		for _, f := range t.Faults {
			f.N = max(f.N, 1) // a trigger's fault is at least for the request that set it off
			queued = append(queued, expand(f)...)
		}
		h.faults = append(queued, h.faults...)
		break
	}
	if len(h.faults) == 0 {
		return fault{}, false
	}
	f := h.faults[0]
	h.faults = h.faults[1:]
	return f, true
}

func (h *harness) putRaw(rh *handler, a map[string]any) {
	id, _ := a["id"].(string)
	if id == "" {
		id = newID()
	}
	h.st.mu.Lock()
	defer h.st.mu.Unlock()
	delete(a, "meta")
	now := time.Now().UTC()
	r, ok := rh.records()[id]
	if !ok {
		h.st.seq++
		r = &record{id: id, seq: h.st.seq, created: now}
		rh.records()[id] = r
	}
	delete(a, "id")
	r.attrs, r.modified = a, now
	r.rev++
}

type recorder struct {
	http.ResponseWriter
	status *int
}

func (r recorder) WriteHeader(code int) {
	*r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r recorder) Write(b []byte) (int, error) {
	if *r.status == 0 {
		*r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func scimError(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/scim+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:Error"},
		"status":  fmt.Sprint(status),
		"detail":  detail,
	})
}

// serveSCIM logs the request, applies faults and authentication, then hands it to the library.
func (h *harness) serveSCIM(token string, api http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		e := &entry{Method: r.Method, Path: r.URL.RequestURI(), At: float64(time.Now().UnixMicro()) / 1000}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		var parsed any
		if json.Unmarshal(body, &parsed) == nil {
			e.Body = parsed
		}
		status := 0
		defer func() {
			h.mu.Lock()
			e.Status = status
			h.mu.Unlock()
		}()
		f, ok := h.next(e, r.URL.Path)
		if ok {
			switch f.Kind {
			case "drop":
				if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
					_ = conn.Close()
				}
				return
			case "fail":
				status = f.Status
				scimError(w, f.Status, "injected fault")
				return
			case "throttle":
				status = http.StatusTooManyRequests
				w.Header().Set("Retry-After", fmt.Sprint(f.Seconds))
				scimError(w, status, "too many requests (injected)")
				return
			case "delay":
				time.Sleep(time.Duration(f.Ms) * time.Millisecond)
			}
		}
		rec := recorder{ResponseWriter: w, status: &status}
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.Header().Set("WWW-Authenticate", `Bearer realm="scim-strict"`)
			status = http.StatusUnauthorized
			scimError(w, status, "Authorization failure: a valid bearer token is required.")
			return
		}
		defer func() {
			// A panic in the library or the storage is a 500, not a dropped connection (which the
			// client would retry as a network fault).
			if p := recover(); p != nil {
				log.Printf("panic serving %s %s: %v", r.Method, r.URL, p)
				if status == 0 {
					status = http.StatusInternalServerError
					scimError(w, status, fmt.Sprint(p))
				}
			}
		}()
		api.ServeHTTP(rec, r)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (h *harness) dump(rh *handler) []map[string]any {
	out := []map[string]any{}
	for _, r := range h.st.sorted(rh.records()) {
		a := clone(r.attrs)
		a["id"] = r.id
		// version counts the writes: a snapshot of the store changes with every one.
		a["meta"] = map[string]any{
			"created":      r.created.Format(time.RFC3339Nano),
			"lastModified": r.modified.Format(time.RFC3339Nano),
			"version":      r.rev,
		}
		out = append(out, a)
	}
	return out
}

func (h *harness) admin(mux *http.ServeMux) {
	mux.HandleFunc("GET /_harness/requests", func(w http.ResponseWriter, r *http.Request) {
		var since int
		_, _ = fmt.Sscan(r.URL.Query().Get("since"), &since)
		h.mu.Lock()
		defer h.mu.Unlock()
		since = min(max(since, 0), len(h.log))
		writeJSON(w, map[string]any{"total": len(h.log), "entries": h.log[since:]})
	})
	mux.HandleFunc("GET /_harness/store", func(w http.ResponseWriter, _ *http.Request) {
		h.st.mu.Lock()
		defer h.st.mu.Unlock()
		writeJSON(w, map[string]any{"users": h.dump(h.users), "groups": h.dump(h.groups)})
	})
	for kind, rh := range map[string]*handler{"users": h.users, "groups": h.groups} {
		mux.HandleFunc("PUT /_harness/"+kind+"/{id}", func(w http.ResponseWriter, r *http.Request) {
			var a map[string]any
			d := json.NewDecoder(r.Body)
			d.UseNumber()
			if err := d.Decode(&a); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			a["id"] = r.PathValue("id")
			h.putRaw(rh, a)
			w.WriteHeader(http.StatusNoContent)
		})
		mux.HandleFunc("DELETE /_harness/"+kind+"/{id}", func(w http.ResponseWriter, r *http.Request) {
			h.st.mu.Lock()
			defer h.st.mu.Unlock()
			delete(rh.records(), r.PathValue("id"))
			w.WriteHeader(http.StatusNoContent)
		})
	}
	mux.HandleFunc("POST /_harness/reset", func(w http.ResponseWriter, _ *http.Request) {
		h.st.reset()
		h.mu.Lock()
		h.faults, h.triggers = nil, nil
		h.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /_harness/faults", func(w http.ResponseWriter, r *http.Request) {
		var f fault
		if err := json.NewDecoder(r.Body).Decode(&f); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		h.faults = append(h.faults, expand(f)...)
		h.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /_harness/faults", func(w http.ResponseWriter, _ *http.Request) {
		h.mu.Lock()
		h.faults = nil
		h.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /_harness/faults", func(w http.ResponseWriter, _ *http.Request) {
		h.mu.Lock()
		defer h.mu.Unlock()
		writeJSON(w, map[string]int{"pending": len(h.faults)})
	})
	mux.HandleFunc("POST /_harness/triggers", func(w http.ResponseWriter, r *http.Request) {
		var t trigger
		d := json.NewDecoder(r.Body)
		d.UseNumber()
		if err := d.Decode(&t); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		h.triggers = append(h.triggers, t)
		h.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
}

func withCommon(s schema.Schema) schema.Schema {
	s.Attributes = append(append(schema.Attributes{}, s.Attributes...), schema.CommonAttributes()...)
	return s
}

func main() {
	token := flag.String("token", "", "the accepted bearer token (required)")
	maxPage := flag.Int("max-page-size", 0, "silently cap the count of list requests (0: the library's maxResults)")
	flag.Parse()
	if *token == "" {
		log.Fatal("--token is required")
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	origin := "http://" + ln.Addr().String()

	st := newStore(*maxPage)
	enterprise := schema.ExtensionEnterpriseUser()
	h := &harness{
		st:     st,
		users:  &handler{st: st, user: true, schema: withCommon(schema.CoreUserSchema()), exts: []schema.Schema{enterprise}},
		groups: &handler{st: st, schema: withCommon(schema.CoreGroupSchema())},
	}
	api, err := scim.NewServer(&scim.ServerArgs{
		ServiceProviderConfig: &scim.ServiceProviderConfig{
			DocumentationURI: optional.NewString("https://datatracker.ietf.org/doc/html/rfc7644"),
			AuthenticationSchemes: []scim.AuthenticationScheme{{
				Type:        scim.AuthenticationTypeOauthBearerToken,
				Name:        "OAuth Bearer Token",
				Description: "Authentication with a bearer token (RFC 6750).",
				Primary:     true,
			}},
			MaxResults:       200,
			SupportFiltering: true,
			SupportPatch:     true,
		},
		ResourceTypes: []scim.ResourceType{
			{
				ID:               optional.NewString("User"),
				Name:             "User",
				Endpoint:         "/Users",
				Description:      optional.NewString("User Account"),
				Schema:           schema.CoreUserSchema(),
				SchemaExtensions: []scim.SchemaExtension{{Schema: enterprise}},
				Handler:          h.users,
			},
			{
				ID:          optional.NewString("Group"),
				Name:        "Group",
				Endpoint:    "/Groups",
				Description: optional.NewString("Group"),
				Schema:      schema.CoreGroupSchema(),
				Handler:     h.groups,
			},
		},
	}, scim.WithBaseURL(origin+mount))
	if err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	// The library routes on paths below /v2.
	mux.Handle(mount+"/", h.serveSCIM(*token, http.StripPrefix("/scim", api)))
	h.admin(mux)

	ready, _ := json.Marshal(map[string]string{"baseURL": origin + mount, "adminURL": origin + "/_harness"})
	fmt.Fprintln(os.Stdout, string(ready))
	log.Fatal(http.Serve(ln, mux))
}
