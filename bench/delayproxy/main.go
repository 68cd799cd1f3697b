// delayproxy: a TCP proxy that adds a fixed one-way delay to every byte in both
// directions, standing in for `tc qdisc add dev lo root netem delay D` where the
// kernel has no sch_netem (bench/run uses it only then).
//
//	delayproxy -listen 127.0.0.1:0 -upstream 127.0.0.1:PORT -delay 10ms -portfile F
//
// Per connection and direction, a reader timestamps each chunk it reads and a writer
// forwards it once `delay` has passed, in order. Bandwidth is not limited (chunks are
// pipelined), so this models propagation delay like netem does: a request/response
// round trip costs 2 x delay more. A new connection waits 2 x delay before its first
// byte goes upstream, standing in for the TCP handshake netem would also delay.
// Unlike netem on lo, only the traffic through the proxy (S3) is delayed; Kafka and
// Redis are not.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"time"
)

type chunk struct {
	due  time.Time
	data []byte
}

func pipe(dst, src net.Conn, delay time.Duration, start time.Time) {
	ch := make(chan chunk, 4096)
	go func() {
		defer close(ch)
		for {
			buf := make([]byte, 64*1024)
			n, err := src.Read(buf)
			if n > 0 {
				due := time.Now().Add(delay)
				if due.Before(start) {
					due = start
				}
				ch <- chunk{due, buf[:n]}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range ch {
		if d := time.Until(c.due); d > 0 {
			time.Sleep(d)
		}
		if _, err := dst.Write(c.data); err != nil {
			break
		}
	}
	// Drain so the reader goroutine never blocks forever on a full channel.
	go func() {
		for range ch {
		}
	}()
	if tc, ok := dst.(*net.TCPConn); ok {
		tc.CloseWrite()
	} else {
		dst.Close()
	}
}

func handle(client net.Conn, upstream string, delay time.Duration) {
	defer client.Close()
	start := time.Now().Add(2 * delay) // handshake round trip
	server, err := net.Dial("tcp", upstream)
	if err != nil {
		log.Printf("dial %s: %v", upstream, err)
		return
	}
	defer server.Close()
	done := make(chan struct{}, 2)
	go func() { pipe(server, client, delay, start); done <- struct{}{} }()
	go func() { pipe(client, server, delay, start); done <- struct{}{} }()
	<-done
	<-done
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "listen address")
	upstream := flag.String("upstream", "", "upstream host:port")
	delay := flag.Duration("delay", 10*time.Millisecond, "one-way delay per direction")
	portfile := flag.String("portfile", "", "write the listening port here")
	flag.Parse()
	if *upstream == "" {
		fmt.Fprintln(os.Stderr, "delayproxy: -upstream is required")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	if *portfile != "" {
		port := ln.Addr().(*net.TCPAddr).Port
		if err := os.WriteFile(*portfile, []byte(fmt.Sprintf("%d\n", port)), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			log.Fatal(err)
		}
		go handle(c, *upstream, *delay)
	}
}
