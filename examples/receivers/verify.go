// Verify a Hookline delivery (scheme "standard") with Go's standard library.
// Input as JSON on stdin, {"headers": {...}, "body": "..."}:  go run verify.go whsec_... < request.json
package main

import ("crypto/hmac"; "crypto/sha256"; "encoding/base64"; "encoding/json"; "fmt"; "os"; "strconv"; "strings"; "time")

func main() {
	var req struct { Headers map[string]string; Body string }
	json.NewDecoder(os.Stdin).Decode(&req)
	h := map[string]string{}
	for k, v := range req.Headers { h[strings.ToLower(k)] = v }
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(os.Args[1], "whsec_"))
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(h["webhook-id"] + "." + h["webhook-timestamp"] + "." + req.Body)) // the raw body
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	ts, _ := strconv.ParseInt(h["webhook-timestamp"], 10, 64)
	age := time.Now().Unix() - ts
	for _, sig := range strings.Fields(h["webhook-signature"]) { // two during a secret rotation
		if age < 300 && age > -300 && hmac.Equal([]byte(sig), []byte(want)) { fmt.Println("valid"); return }
	}
	fmt.Println("invalid: signature mismatch or stale timestamp"); os.Exit(1)
}
