module gobench

go 1.23.6

require github.com/Jipok/go-persist v1.9.1

require (
	github.com/goccy/go-json v0.10.5 // indirect
	github.com/puzpuzpuz/xsync/v3 v3.5.1 // indirect
)

// /work/shared/goread/setup.sh exports these modules (pinned commits) into /tmp/goread/src.
replace (
	github.com/Jipok/go-persist => /tmp/goread/src/go-persist
	github.com/goccy/go-json => /tmp/goread/src/go-json
	github.com/puzpuzpuz/xsync/v3 => /tmp/goread/src/xsync
)
