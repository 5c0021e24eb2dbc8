package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/elimity-com/scim"
	scimerrors "github.com/elimity-com/scim/errors"
	"github.com/elimity-com/scim/optional"
	"github.com/elimity-com/scim/schema"
)

type attrs = map[string]any

// record is one stored resource: the attributes as the library validated them (externalId and
// extension objects included; no id, no meta), plus what the service itself keeps.
type record struct {
	id       string
	seq      int64 // creation order, for stable pages
	rev      int64 // bumped by every change, so that a test can see any write
	created  time.Time
	modified time.Time
	attrs    attrs
}

// store holds Users and Groups in memory. One mutex: the tests need consistency, not throughput.
type store struct {
	mu     sync.Mutex
	seq    int64
	users  map[string]*record
	groups map[string]*record
	// maxPage silently caps the count of list requests, as many services do.
	maxPage int
}

func newStore(maxPage int) *store {
	return &store{users: map[string]*record{}, groups: map[string]*record{}, maxPage: maxPage}
}

func (s *store) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users, s.groups = map[string]*record{}, map[string]*record{}
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// clone deep-copies JSON-like data, so that nothing handed to the library aliases storage.
func clone(v attrs) attrs {
	raw, _ := json.Marshal(v)
	var out attrs
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	_ = d.Decode(&out)
	return out
}

// handler serves one resource type from the store through scim.ResourceHandler.
type handler struct {
	st     *store
	user   bool
	schema schema.Schema   // core schema with the common attributes, as the library validates
	exts   []schema.Schema // schema extensions
}

func (h *handler) records() map[string]*record {
	if h.user {
		return h.st.users
	}
	return h.st.groups
}

// view is a record as the service shows it: for a User, the read-only groups derived from the
// Groups' members (RFC 7643 section 4.1.2); never the password (returned "never").
func (h *handler) view(r *record) attrs {
	out := clone(r.attrs)
	if !h.user {
		return out
	}
	delete(out, "password")
	var groups []any
	for _, g := range h.st.sorted(h.st.groups) {
		for _, m := range members(g.attrs) {
			if m["value"] == r.id {
				groups = append(groups, attrs{"value": g.id, "display": g.attrs["displayName"], "type": "direct"})
				break
			}
		}
	}
	if groups != nil {
		out["groups"] = groups
	}
	return out
}

func (h *handler) resource(r *record) scim.Resource {
	a := h.view(r)
	ext := optional.String{}
	if e, ok := a["externalId"].(string); ok {
		ext = optional.NewString(e)
	}
	created, modified := r.created, r.modified
	return scim.Resource{ID: r.id, ExternalID: ext, Attributes: a, Meta: scim.Meta{Created: &created, LastModified: &modified}}
}

func (s *store) sorted(m map[string]*record) []*record {
	out := make([]*record, 0, len(m))
	for _, r := range m {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return out
}

func members(a attrs) []attrs {
	list, _ := a["members"].([]any)
	out := make([]attrs, 0, len(list))
	for _, m := range list {
		if m, ok := m.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func notFound(id string) error { return scimerrors.ScimErrorResourceNotFound(id) }

func invalid(detail string) error {
	e := scimerrors.ScimErrorInvalidValue
	e.Detail = detail
	return e
}

// check enforces what the schema declares but the library leaves to storage: userName has
// uniqueness "server" and is case-insensitive (caseExact false); Group members must be Users that
// exist, listed once.
func (h *handler) check(id string, a attrs) error {
	if h.user {
		// manager.value is the id of the manager's User (RFC 7643 section 4.3), not a name.
		if ext, ok := a[schema.ExtensionEnterpriseUser().ID].(map[string]any); ok {
			if m, ok := ext["manager"].(map[string]any); ok && m["value"] != nil {
				if _, ok := h.st.users[fmt.Sprint(m["value"])]; !ok {
					return invalid(fmt.Sprintf("manager %q is not the id of a User of this service.", m["value"]))
				}
			}
		}
		name, _ := a["userName"].(string)
		for otherID, other := range h.st.users {
			if otherID != id && strings.EqualFold(fmt.Sprint(other.attrs["userName"]), name) {
				e := scimerrors.ScimErrorUniqueness
				e.Detail = fmt.Sprintf("userName %q is already taken.", name)
				return e
			}
		}
		return nil
	}
	seen := map[string]bool{}
	var kept []any
	for _, m := range members(a) {
		value, _ := m["value"].(string)
		if seen[value] {
			continue
		}
		if _, ok := h.st.users[value]; !ok && !isMember(h.st.groups[id], value) {
			return invalid(fmt.Sprintf("member %q is not a User of this service.", value))
		}
		seen[value] = true
		kept = append(kept, m)
	}
	if kept == nil {
		delete(a, "members")
	} else {
		a["members"] = kept
	}
	return nil
}

// isMember: a member already in the group may stay even if its User is gone (a dangling member,
// which the tests make by hand); only new members must exist.
func isMember(g *record, id string) bool {
	if g == nil {
		return false
	}
	for _, m := range members(g.attrs) {
		if m["value"] == id {
			return true
		}
	}
	return false
}

// save writes a record after the checks; the caller holds the lock.
func (h *handler) save(id string, a attrs) (*record, error) {
	delete(a, "id")
	if h.user {
		delete(a, "groups") // read-only, derived
	}
	if err := h.check(id, a); err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	r, ok := h.records()[id]
	if !ok {
		h.st.seq++
		r = &record{id: id, seq: h.st.seq, created: now}
		h.records()[id] = r
	}
	r.attrs, r.modified = a, now
	r.rev++
	return r, nil
}

func (h *handler) Create(_ *http.Request, a scim.ResourceAttributes) (scim.Resource, error) {
	h.st.mu.Lock()
	defer h.st.mu.Unlock()
	r, err := h.save(newID(), attrs(a))
	if err != nil {
		return scim.Resource{}, err
	}
	return h.resource(r), nil
}

func (h *handler) Get(_ *http.Request, id string) (scim.Resource, error) {
	h.st.mu.Lock()
	defer h.st.mu.Unlock()
	r, ok := h.records()[id]
	if !ok {
		return scim.Resource{}, notFound(id)
	}
	return h.resource(r), nil
}

func (h *handler) GetAll(_ *http.Request, p scim.ListRequestParams) (scim.Page, error) {
	h.st.mu.Lock()
	defer h.st.mu.Unlock()
	var matched []scim.Resource
	for _, r := range h.st.sorted(h.records()) {
		res := h.resource(r)
		if p.FilterValidator != nil {
			// The library evaluates the filter with the schema's case rules (userName and
			// displayName case-insensitive, externalId and id exact).
			if err := p.FilterValidator.PassesFilter(filterView(res)); err != nil {
				continue
			}
		}
		matched = append(matched, res)
	}
	count := p.Count
	if h.st.maxPage > 0 && count > h.st.maxPage {
		count = h.st.maxPage
	}
	start := min(p.StartIndex-1, len(matched))
	end := min(start+count, len(matched))
	return scim.Page{TotalResults: len(matched), Resources: matched[start:end]}, nil
}

// filterView is a resource with the common attributes the filter may name (id, externalId, meta).
func filterView(res scim.Resource) map[string]any {
	out := clone(res.Attributes)
	out["id"] = res.ID
	out["meta"] = attrs{
		"created":      res.Meta.Created.Format(time.RFC3339Nano),
		"lastModified": res.Meta.LastModified.Format(time.RFC3339Nano),
	}
	return out
}

func (h *handler) Replace(_ *http.Request, id string, a scim.ResourceAttributes) (scim.Resource, error) {
	h.st.mu.Lock()
	defer h.st.mu.Unlock()
	if _, ok := h.records()[id]; !ok {
		return scim.Resource{}, notFound(id)
	}
	r, err := h.save(id, attrs(a))
	if err != nil {
		return scim.Resource{}, err
	}
	return h.resource(r), nil
}

func (h *handler) Delete(_ *http.Request, id string) error {
	h.st.mu.Lock()
	defer h.st.mu.Unlock()
	if _, ok := h.records()[id]; !ok {
		return notFound(id)
	}
	delete(h.records(), id)
	if h.user {
		// As most services do: a deleted User leaves every Group.
		for _, g := range h.st.groups {
			kept := []any{}
			for _, m := range members(g.attrs) {
				if m["value"] != id {
					kept = append(kept, m)
				}
			}
			if len(kept) != len(members(g.attrs)) {
				if len(kept) == 0 {
					delete(g.attrs, "members")
				} else {
					g.attrs["members"] = kept
				}
				g.rev++
				g.modified = time.Now().UTC()
			}
		}
	}
	return nil
}

func (h *handler) Patch(_ *http.Request, id string, ops []scim.PatchOperation) (scim.Resource, error) {
	h.st.mu.Lock()
	defer h.st.mu.Unlock()
	r, ok := h.records()[id]
	if !ok {
		return scim.Resource{}, notFound(id)
	}
	next := clone(r.attrs)
	changed := false
	for _, op := range ops {
		c, err := h.apply(next, op)
		if err != nil {
			return scim.Resource{}, err
		}
		changed = changed || c
	}
	if !changed {
		// No Attributes: the library answers 204 (RFC 7644 section 3.5.2: nothing to change).
		return scim.Resource{}, nil
	}
	r, err := h.save(id, next)
	if err != nil {
		return scim.Resource{}, err
	}
	return h.resource(r), nil
}
