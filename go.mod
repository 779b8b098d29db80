module mtlsconform

go 1.26.8

require software.sslmate.com/src/go-pkcs12 v0.7.4

require golang.org/x/crypto v0.58.0 // indirect
