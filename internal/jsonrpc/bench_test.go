package jsonrpc

import "testing"

var benchMsg = []byte(`{"jsonrpc":"2.0","id":12,"result":{"content":[{"type":"text","text":"benchmark payload"}],"structuredContent":{"a":1,"b":[1,2,3]}}}`)

func BenchmarkParse(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if _, err := Parse(benchMsg); err != nil {
			b.Fatal(err)
		}
	}
}
