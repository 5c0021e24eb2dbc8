// A strict SCIM 2.0 service provider for the tests (test/harness/scim-strict.ts): the protocol is
// github.com/elimity-com/scim with github.com/scim2/filter-parser/v2; the storage is ours.
module roster.dev/test/harness/scim-strict

go 1.24.0

require (
	github.com/elimity-com/scim v0.0.0-20260728105928-2641426a1539
	github.com/scim2/filter-parser/v2 v2.3.1
)

require (
	github.com/q-uint/parser v0.3.1 // indirect
	github.com/q-uint/xsd-datetime v1.0.0 // indirect
)
