module github.com/sngate/sngate

go 1.26
