//! HTTP/2 + TLS block-transfer throughput server and client.
