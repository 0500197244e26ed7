// bench/peers/go_msgclient: the Go peer of the message path (bench/msgpath.py).
//
// github.com/gorilla/websocket (Debian's golang-github-gorilla-websocket-dev), a goroutine per
// feed reading with ReadMessage; every message becomes one JSONL record, encoded with
// encoding/json and written through one mutex-guarded bufio.Writer (64 KiB) to one file:
//
//	{"ts":<µs since the epoch>,"feed":"f00017","conn":1,"type":"text","data":"<message>"}
//
// ts is time.Now().UnixMicro() when ReadMessage returns. The writer is flushed when full and
// every 10 ms by a ticker, so a quiet feed's records are never held long. No heartbeats,
// default dialer (no compression). Runs until SIGTERM/SIGINT, then flushes and prints counts.
//
// Build (no network: Debian's Go and gorilla only):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o go_msgclient .
//
// usage: go_msgclient -n N -out FILE URL...
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

type record struct {
	Ts   int64  `json:"ts"`
	Feed string `json:"feed"`
	Conn int    `json:"conn"`
	Type string `json:"type"`
	Data string `json:"data"`
}

var (
	mu                    sync.Mutex
	w                     *bufio.Writer
	opened, failed, nmsgs int64
)

func feed(i int, url string) {
	name := fmt.Sprintf("f%05d", i)
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		atomic.AddInt64(&failed, 1)
		fmt.Fprintf(os.Stderr, "go msgclient: %s: %v\n", name, err)
		return
	}
	atomic.AddInt64(&opened, 1)
	for {
		_, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		ts := time.Now().UnixMicro()
		line, _ := json.Marshal(record{ts, name, 1, "text", string(msg)})
		atomic.AddInt64(&nmsgs, 1)
		mu.Lock()
		w.Write(line)
		w.WriteByte('\n')
		mu.Unlock()
	}
}

func main() {
	n := flag.Int("n", 0, "feeds")
	out := flag.String("out", "", "output file")
	flag.Parse()
	urls := flag.Args()
	if *n <= 0 || *out == "" || len(urls) == 0 {
		fmt.Fprintln(os.Stderr, "usage: go_msgclient -n N -out FILE URL...")
		os.Exit(64)
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0644)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	w = bufio.NewWriterSize(f, 64*1024)
	for i := 0; i < *n; i++ {
		go feed(i, urls[i%len(urls)])
	}
	go func() {
		for range time.Tick(10 * time.Millisecond) {
			mu.Lock()
			w.Flush()
			mu.Unlock()
		}
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	mu.Lock()
	w.Flush()
	mu.Unlock()
	fmt.Fprintf(os.Stderr, "go msgclient: n=%d opened=%d failed=%d msgs=%d\n", *n,
		atomic.LoadInt64(&opened), atomic.LoadInt64(&failed), atomic.LoadInt64(&nmsgs))
	os.Exit(0)
}
