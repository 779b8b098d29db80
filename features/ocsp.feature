Feature: Client certificates checked by OCSP
  A balancer that asks an OCSP responder about each client certificate lets
  it through only on a good answer. Revoked, unknown, no answer, an answer
  that is no OCSP response, or a response past its nextUpdate: the
  certificate is refused (Mandatory) or marked FAILED (Optional); the
  balancer fails closed. The responder is the harness's own: the
  reference's backend, or `mtlsconform ocsp-responder` that a live
  balancer is pointed at (C24). The responder says one thing of a
  certificate at a time, so each scenario has certificates of its own.

  Background:
    Given the "Partner Root CA" is a root CA
    And the "Partner Issuing CA" is an intermediate CA under the "Partner Root CA"
    And the truststore holds "Partner Issuing CA", "Partner Root CA"
    And the load balancer checks each client certificate with the OCSP responder

  @C24 @mandatory @ocsp @new-leaves
  Scenario: A certificate the responder calls good is accepted
    Given the load balancer requires client certificates
    And a client certificate "ocsp-good" issued by the "Partner Issuing CA"
    And the OCSP responder for "Partner Issuing CA" says "ocsp-good" is good
    When the partner calls GET /dev-portal-xapi/products with the certificate "ocsp-good"
    Then the response is the product list
    And the OCSP responder was asked about "ocsp-good"

  @C24 @mandatory @ocsp @new-leaves @backend-view
  Scenario: A certificate the responder calls revoked is refused
    Given the load balancer requires client certificates
    And a client certificate "ocsp-revoked" issued by the "Partner Issuing CA"
    And the OCSP responder for "Partner Issuing CA" says "ocsp-revoked" is revoked
    When the partner calls GET /dev-portal-xapi/products with the certificate "ocsp-revoked"
    Then the partner is refused
    And the backend received no request
    And the OCSP responder was asked about "ocsp-revoked"

  @C24 @mandatory @ocsp @new-leaves @backend-view
  Scenario: A certificate the responder does not know is refused
    Given the load balancer requires client certificates
    And a client certificate "ocsp-unknown" issued by the "Partner Issuing CA"
    And the OCSP responder for "Partner Issuing CA" says "ocsp-unknown" is unknown
    When the partner calls GET /dev-portal-xapi/products with the certificate "ocsp-unknown"
    Then the partner is refused
    And the backend received no request
    And the OCSP responder was asked about "ocsp-unknown"

  @C24 @mandatory @ocsp @new-leaves @backend-view
  Scenario: A responder that does not answer fails the certificate closed
    Given the load balancer requires client certificates
    And a client certificate "ocsp-down" issued by the "Partner Issuing CA"
    And the OCSP responder for "Partner Issuing CA" is down when asked about "ocsp-down"
    When the partner calls GET /dev-portal-xapi/products with the certificate "ocsp-down"
    Then the partner is refused
    And the backend received no request
    And the OCSP responder was asked about "ocsp-down"

  @C24 @mandatory @ocsp @new-leaves @backend-view
  Scenario: A responder that answers garbage fails the certificate closed
    Given the load balancer requires client certificates
    And a client certificate "ocsp-garbage" issued by the "Partner Issuing CA"
    And the OCSP responder for "Partner Issuing CA" answers garbage when asked about "ocsp-garbage"
    When the partner calls GET /dev-portal-xapi/products with the certificate "ocsp-garbage"
    Then the partner is refused
    And the backend received no request
    And the OCSP responder was asked about "ocsp-garbage"

  @C24 @mandatory @ocsp @new-leaves @backend-view
  Scenario: A good response past its nextUpdate is not trusted
    Given the load balancer requires client certificates
    And a client certificate "ocsp-stale" issued by the "Partner Issuing CA"
    And the OCSP responder for "Partner Issuing CA" says "ocsp-stale" is good in a response past its nextUpdate
    When the partner calls GET /dev-portal-xapi/products with the certificate "ocsp-stale"
    Then the partner is refused
    And the backend received no request
    And the OCSP responder was asked about "ocsp-stale"

  @C24 @optional @ocsp @new-leaves @backend-view
  Scenario: Optional mode marks a certificate the responder calls revoked FAILED
    Given the load balancer accepts client certificates optionally
    And a client certificate "ocsp-optional-revoked" issued by the "Partner Issuing CA"
    And the OCSP responder for "Partner Issuing CA" says "ocsp-optional-revoked" is revoked
    When the partner calls GET /echo with the certificate "ocsp-optional-revoked"
    Then the response status is 200
    And every request the backend received carries X-SSL-Client-Verify "FAILED"
