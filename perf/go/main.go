// gobench runs one phase of go-persist's load benchmark with the real Go
// library, so perf/load.py can put Go's figures beside persist's measured on
// the same machine and the same file. Each phase runs in a fresh process and
// prints one JSON object: {"seconds": ..., "rss_before": ..., "rss_after": ...}.
//
//	gobench write SRC DST MAPS...     load SRC (untimed), then time writing its records to DST
//	gobench one FILE MAP KEY MAPS...  time open + one Get
//	gobench gets FILE MAP N MAPS...   time open + Get of key-0 .. key-N-1 in a shuffled order
//	gobench all FILE MAPS...          time open + Range over every map
//	gobench cycles FILE MAP KEY N MAPS...  time N open + Get + Close cycles
package main

import (
	"bufio"
	"encoding/json"
	"log"
	"math/rand"
	"os"
	"strconv"
	"strings"
	"time"

	persist "github.com/Jipok/go-persist"
)

// Meta and ComplexRecord are the load benchmark's record, as in go-persist's benchmark-load.
type Meta struct {
	CreatedAt int64
	UpdatedAt int64
	Tags      []string
}

type ComplexRecord struct {
	ID          string
	Name        string
	Description string
	Data        string
	Meta        Meta
}

type maps map[string]*persist.PersistMap[ComplexRecord]

func open(path string, names []string) (*persist.Store, maps) {
	store := persist.New()
	ms := maps{}
	for _, name := range names {
		m, err := persist.Map[ComplexRecord](store, name)
		if err != nil {
			log.Fatal(err)
		}
		ms[name] = m
	}
	if err := store.Open(path); err != nil {
		log.Fatal(err)
	}
	return store, ms
}

// rss is the process's resident set size in bytes (VmRSS of /proc/self/status).
func rss() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	scan := bufio.NewScanner(f)
	for scan.Scan() {
		line := scan.Text()
		if strings.HasPrefix(line, "VmRSS:") {
			kb, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			return kb * 1024
		}
	}
	return -1
}

func mustGet(m *persist.PersistMap[ComplexRecord], key string) ComplexRecord {
	r, ok := m.Get(key)
	if !ok {
		log.Fatalf("key %s not found", key)
	}
	return r
}

func report(start time.Time, before int64, extra map[string]any) {
	out := map[string]any{
		"seconds":    time.Since(start).Seconds(),
		"rss_before": before,
		"rss_after":  rss(),
	}
	for k, v := range extra {
		out[k] = v
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		log.Fatal(err)
	}
}

func main() {
	args := os.Args[1:]
	if len(args) < 2 {
		log.Fatal("usage: gobench write|one|gets|all|cycles ...")
	}
	before := rss()
	switch args[0] {
	case "write":
		src, dst, names := args[1], args[2], args[3:]
		store, ms := open(src, names)
		type item struct {
			key string
			rec ComplexRecord
		}
		records := map[string][]item{}
		for _, name := range names {
			ms[name].Range(func(k string, v ComplexRecord) bool {
				records[name] = append(records[name], item{k, v})
				return true
			})
		}
		store.Close()
		before = rss()
		start := time.Now()
		out, outMaps := open(dst, names)
		for _, name := range names {
			for _, it := range records[name] {
				outMaps[name].Set(it.key, it.rec)
			}
		}
		out.Close()
		report(start, before, nil)
	case "one":
		path, name, key, names := args[1], args[2], args[3], args[4:]
		start := time.Now()
		store, ms := open(path, names)
		r := mustGet(ms[name], key)
		report(start, before, map[string]any{"id": r.ID})
		store.Close()
	case "gets":
		path, name, names := args[1], args[2], args[4:]
		n, _ := strconv.Atoi(args[3])
		order := rand.New(rand.NewSource(42)).Perm(n)
		start := time.Now()
		store, ms := open(path, names)
		for _, i := range order {
			r := mustGet(ms[name], "key-"+strconv.Itoa(i))
			if !strings.HasSuffix(r.ID, "-"+strconv.Itoa(i)) {
				log.Fatalf("wrong value for key-%d: %s", i, r.ID)
			}
		}
		report(start, before, nil)
		store.Close()
	case "all":
		path, names := args[1], args[2:]
		start := time.Now()
		store, ms := open(path, names)
		count := 0
		for _, name := range names {
			ms[name].Range(func(k string, v ComplexRecord) bool {
				count += len(v.Data)
				return true
			})
		}
		report(start, before, map[string]any{"data_bytes": count})
		store.Close()
	case "cycles":
		path, name, key, names := args[1], args[2], args[3], args[5:]
		n, _ := strconv.Atoi(args[4])
		start := time.Now()
		for i := 0; i < n; i++ {
			store, ms := open(path, names)
			mustGet(ms[name], key)
			store.Close()
		}
		report(start, before, nil)
	default:
		log.Fatalf("unknown phase %q", args[0])
	}
}
