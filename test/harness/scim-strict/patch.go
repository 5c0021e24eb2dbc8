package main

import (
	"reflect"
	"strings"

	"github.com/elimity-com/scim"
	scimerrors "github.com/elimity-com/scim/errors"
	scimfilter "github.com/elimity-com/scim/filter"
	"github.com/elimity-com/scim/schema"
	"github.com/scim2/filter-parser/v2"
)

// The library parses and validates each PATCH operation against the schema (paths, value types,
// value filters); applying it is left to the resource handler, so storage does it here, as RFC 7644
// section 3.5.2 describes. Value filters on multi-valued attributes are evaluated by the library.

func attribute(s schema.Schema, name string) (schema.CoreAttribute, bool) {
	for _, a := range s.Attributes {
		if strings.EqualFold(a.Name(), name) {
			return a, true
		}
	}
	return schema.CoreAttribute{}, false
}

func subAttribute(a schema.CoreAttribute, name string) string {
	for _, s := range a.SubAttributes() {
		if strings.EqualFold(s.Name(), name) {
			return s.Name()
		}
	}
	return name
}

func noTarget(detail string) error {
	e := scimerrors.ScimErrorNoTarget
	e.Detail = detail
	return e
}

func mutability(detail string) error {
	e := scimerrors.ScimErrorMutability
	e.Detail = detail
	return e
}

// apply applies one validated operation to a; it reports whether anything changed.
func (h *handler) apply(a attrs, op scim.PatchOperation) (bool, error) {
	if op.Path == nil {
		// No path: the value holds attribute paths (or extension objects) and their values.
		value, _ := op.Value.(map[string]any)
		changed := false
		for key, v := range value {
			var paths map[string]any
			if ext, ok := h.extension(key); ok {
				paths, _ = v.(map[string]any)
				for name, v := range paths {
					path := filter.Path{AttributePath: filter.AttributePath{URIPrefix: &ext.ID, AttributeName: name}}
					c, err := h.apply(a, scim.PatchOperation{Op: op.Op, Path: &path, Value: v})
					if err != nil {
						return false, err
					}
					changed = changed || c
				}
				continue
			}
			path, err := filter.ParsePath([]byte(key))
			if err != nil {
				return false, scimerrors.ScimErrorInvalidPath
			}
			c, err := h.apply(a, scim.PatchOperation{Op: op.Op, Path: &path, Value: v})
			if err != nil {
				return false, err
			}
			changed = changed || c
		}
		return changed, nil
	}

	path := *op.Path
	container, s := a, h.schema
	if ext, ok := h.extension(path.AttributePath.URI()); ok {
		s = ext
		sub, _ := a[ext.ID].(map[string]any)
		if sub == nil {
			if op.Op == scim.PatchOperationRemove {
				return false, nil
			}
			sub = attrs{}
			a[ext.ID] = sub
		}
		container = sub
		defer func() {
			if len(sub) == 0 {
				delete(a, ext.ID)
			}
		}()
	}
	attr, ok := attribute(s, path.AttributePath.AttributeName)
	if !ok {
		return false, scimerrors.ScimErrorInvalidPath
	}
	name := attr.Name()
	current, present := container[name]
	// Mutability is declared by the schema; the library's validation does not check it for PATCH.
	switch attr.Mutability() {
	case "readOnly":
		return false, mutability(name + " is read-only.")
	case "immutable":
		if op.Op != scim.PatchOperationAdd && present {
			return false, mutability(name + " is immutable.")
		}
	}

	if path.ValueExpression != nil {
		return applyFiltered(container, attr, path, op)
	}
	if sub := path.AttributePath.SubAttributeName(); sub != "" {
		sub = subAttribute(attr, sub)
		if attr.MultiValued() {
			return false, noTarget("a sub-attribute of a multi-valued attribute needs a value filter.")
		}
		m, _ := current.(map[string]any)
		if op.Op == scim.PatchOperationRemove {
			if _, ok := m[sub]; !ok {
				return false, nil
			}
			delete(m, sub)
			if len(m) == 0 {
				delete(container, name)
			}
			return true, nil
		}
		if m == nil {
			m = attrs{}
			container[name] = m
		}
		if reflect.DeepEqual(m[sub], op.Value) {
			return false, nil
		}
		m[sub] = op.Value
		return true, nil
	}

	switch op.Op {
	case scim.PatchOperationRemove:
		if !present {
			return false, nil
		}
		if list, ok := op.Value.([]any); ok && attr.MultiValued() {
			// remove with a value: those values leave the list (as Azure AD sends for members).
			kept := without(current.([]any), list)
			if len(kept) == len(current.([]any)) {
				return false, nil
			}
			setList(container, name, kept)
			return true, nil
		}
		delete(container, name)
		return true, nil
	case scim.PatchOperationAdd:
		if attr.MultiValued() {
			list, _ := current.([]any)
			changed := false
			for _, v := range op.Value.([]any) {
				if !contains(list, v) {
					list = append(list, v)
					changed = true
				}
			}
			container[name] = list
			return changed, nil
		}
		fallthrough
	default: // add of a single value, replace
		if m, ok := current.(map[string]any); ok && attr.AttributeType() == "complex" && !attr.MultiValued() {
			// The sub-attributes not given are kept (RFC 7644 section 3.5.2.3).
			before := clone(m)
			for k, v := range op.Value.(map[string]any) {
				m[k] = v
			}
			return !reflect.DeepEqual(before, m), nil
		}
		if reflect.DeepEqual(current, op.Value) {
			return false, nil
		}
		container[name] = op.Value
		return true, nil
	}
}

// applyFiltered applies an operation on attr[filter] or attr[filter].sub.
func applyFiltered(container attrs, attr schema.CoreAttribute, path filter.Path, op scim.PatchOperation) (bool, error) {
	name := attr.Name()
	before := clone(attrs{"v": container[name]})
	list, _ := container[name].([]any)
	match := scimfilter.NewFilterValidator(path.ValueExpression, schema.Schema{
		Attributes: scimfilter.MultiValuedFilterAttributes(attr),
	})
	sub := ""
	if path.SubAttribute != nil {
		sub = subAttribute(attr, *path.SubAttribute)
	}
	var kept []any
	matched := false
	for _, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			m = attrs{"value": e}
		}
		if match.PassesFilter(m) != nil {
			kept = append(kept, e)
			continue
		}
		matched = true
		switch {
		case op.Op == scim.PatchOperationRemove && sub == "":
			continue // the element goes
		case op.Op == scim.PatchOperationRemove:
			delete(m, sub)
		case sub != "":
			m[sub] = op.Value
		case op.Op == scim.PatchOperationReplace:
			m, _ = op.Value.(map[string]any)
		default:
			for k, v := range op.Value.(map[string]any) {
				m[k] = v
			}
		}
		kept = append(kept, m)
	}
	if !matched {
		if op.Op == scim.PatchOperationRemove {
			return false, nil
		}
		// RFC 7644 section 3.5.2.3: a value filter that matches nothing is a 400 noTarget.
		return false, noTarget("the value filter of " + path.String() + " matches no value.")
	}
	setList(container, name, kept)
	return !reflect.DeepEqual(before, clone(attrs{"v": container[name]})), nil
}

func setList(container attrs, name string, list []any) {
	if len(list) == 0 {
		delete(container, name)
	} else {
		container[name] = list
	}
}

// same compares two values of a multi-valued attribute: complex values by their "value" when
// both have one (a member is the same member whatever its display), others in full.
func same(a, b any) bool {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok && am["value"] != nil && bm["value"] != nil {
		return am["value"] == bm["value"]
	}
	return reflect.DeepEqual(a, b)
}

func contains(list []any, v any) bool {
	for _, e := range list {
		if same(e, v) {
			return true
		}
	}
	return false
}

func without(list, remove []any) []any {
	kept := []any{}
	for _, e := range list {
		if !contains(remove, e) {
			kept = append(kept, e)
		}
	}
	return kept
}

func (h *handler) extension(uri string) (schema.Schema, bool) {
	for _, e := range h.exts {
		if uri != "" && strings.EqualFold(e.ID, uri) {
			return e, true
		}
	}
	return schema.Schema{}, false
}
