#!/usr/bin/env bash
# Test certificates for tests/unit/test_tls.c, made with Debian's openssl CLI. The outputs are
# committed; run this again only to replace them (the keys are random, so every file changes).
#
#   ca.crt / ca.key                 "vrev test CA" (EC P-256, CA:TRUE, 100 years)
#   server.crt / server.key         CN=localhost, SAN DNS:localhost + IP:127.0.0.1, signed by the
#                                   CA, EKU serverAuth (EC P-256)
#   server-rsa.crt / server-rsa.key the same names with an RSA-2048 key (the ECDHE-RSA suites)
#   self.crt / self.key             self-signed CN=self.vrev.test, SAN DNS:self.vrev.test +
#                                   IP:127.0.0.1 (pinned by listing it as trusted)
#   other-ca.crt / other.crt / other.key
#                                   a second CA and a localhost certificate it signed: a chain
#                                   the first CA does not know
#
# Nothing here is secret: these keys exist only for tests.
set -euo pipefail
cd "$(dirname "$0")"
days=36500
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

ec_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }

make_ca() { # name key crt
    ec_key "$2"
    openssl req -x509 -new -key "$2" -out "$3" -days "$days" -sha256 -subj "/CN=$1" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign"
}

make_leaf() { # cn san ca.crt ca.key key crt
    cat > "$work/ext.cnf" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=$2
EXT
    openssl req -new -key "$5" -out "$work/leaf.csr" -subj "/CN=$1"
    openssl x509 -req -in "$work/leaf.csr" -CA "$3" -CAkey "$4" -CAcreateserial \
        -CAserial "$work/ca.srl" -out "$6" -days "$days" -sha256 -extfile "$work/ext.cnf"
}

make_ca "vrev test CA" ca.key ca.crt
ec_key server.key
make_leaf localhost "DNS:localhost,IP:127.0.0.1" ca.crt ca.key server.key server.crt
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out server-rsa.key
make_leaf localhost "DNS:localhost,IP:127.0.0.1" ca.crt ca.key server-rsa.key server-rsa.crt

ec_key self.key
openssl req -x509 -new -key self.key -out self.crt -days "$days" -sha256 \
    -subj "/CN=self.vrev.test" \
    -addext "subjectAltName=DNS:self.vrev.test,IP:127.0.0.1" \
    -addext "extendedKeyUsage=serverAuth"

make_ca "vrev other CA" "$work/other-ca.key" other-ca.crt
ec_key other.key
make_leaf localhost "DNS:localhost,IP:127.0.0.1" other-ca.crt "$work/other-ca.key" other.key \
    other.crt

chmod 644 ./*.crt ./*.key
echo "make-certs: wrote $(ls ./*.crt ./*.key | wc -l) files in $(pwd)"
