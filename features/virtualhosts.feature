Feature: Virtual hosts: the protected host is never served on a connection that skipped its checks
  A balancer that serves the partner API (the protected host, which asks
  for client certificates) and a public host on one address picks the TLS
  settings by SNI, during the handshake, and the site by Host, after it. A
  request whose Host names the protected host, on a connection whose SNI
  chose the public host (or that sent no SNI), or on an HTTP/2 connection
  first used for the public host, must be refused (421, 400, 403, an
  alert) or verified, never served as if the caller had been checked.

  Background:
    Given the "Partner Root CA" is a root CA
    And the "Partner Issuing CA" is an intermediate CA under the "Partner Root CA"
    And the truststore holds "Partner Issuing CA", "Partner Root CA"
    And a client certificate "partner-a" issued by the "Partner Issuing CA"

  @C20 @mandatory @public-host @backend-view
  Scenario: A caller without a certificate cannot reach the protected host through the public host's connection
    Given the load balancer requires client certificates
    When the partner calls GET /echo for the protected host over a connection made for the public host, with the headers:
      | X-SSL-Client-Verify | SUCCESS                  |
      | X-SSL-Client-DN     | {subject of "partner-a"} |
    Then the request for the protected host was refused or verified

  @C20 @mandatory @public-host @backend-view
  Scenario: A trusted caller's request for the protected host through the public host's connection is refused or verified
    Given the load balancer requires client certificates
    When the partner calls GET /echo for the protected host over a connection made for the public host with the certificate "partner-a"
    Then the request for the protected host was refused or verified

  @C20 @mandatory @backend-view
  Scenario: A caller without a certificate cannot reach the protected host over a connection without SNI
    Given the load balancer requires client certificates
    When the partner calls GET /echo for the protected host over a connection without SNI, with the headers:
      | X-SSL-Client-Verify | SUCCESS                  |
      | X-SSL-Client-DN     | {subject of "partner-a"} |
    Then the request for the protected host was refused or verified

  @C20 @mandatory @public-host @backend-view
  Scenario: An HTTP/2 connection first used for the public host does not serve the protected host unverified
    Given the load balancer requires client certificates
    When the partner calls GET /echo for the public host and then for the protected host over one HTTP/2 connection
    Then the request for the protected host was refused or verified

  @C20 @optional @public-host @backend-view
  Scenario: Optional mode: the protected host reached through the public host's connection gets no forged identity
    Given the load balancer accepts client certificates optionally
    When the partner calls GET /echo for the protected host over a connection made for the public host, with the headers:
      | X-SSL-Client-Verify | SUCCESS                  |
      | X-SSL-Client-DN     | {subject of "partner-a"} |
    Then the request for the protected host was refused or verified
