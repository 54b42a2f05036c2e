package gateway

import (
	_ "embed"
)

// OpenAPI is the OpenAPI 3 document of the API: every route, parameter,
// schema and problem response. The tests load and validate it, check it
// against the route table, and validate every answer they get against it.
//
//go:embed openapi.json
var OpenAPI []byte

// openAPI is GET /openapi.json.
func (g *Gateway) openAPI(c *call) (*reply, error) {
	return &reply{status: 200, raw: OpenAPI}, nil
}
