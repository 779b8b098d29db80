Feature: Revoked certificates are refused
  With a CRL bundle configured, a certificate its CA has revoked is refused
  in Mandatory mode and marked FAILED in Optional mode. nginx checks the CRL
  of every CA in the chain, so the bundle must hold a current one for each.
  A partner revoked after the balancer started: crlrotation.feature (C23).

  Background:
    Given the "Partner Root CA" is a root CA
    And the "Partner Issuing CA" is an intermediate CA under the "Partner Root CA"
    And the truststore holds "Partner Issuing CA", "Partner Root CA"
    And a revoked client certificate "partner-revoked" issued by the "Partner Issuing CA"
    And a client certificate "partner-a" issued by the "Partner Issuing CA"

  @C15 @mandatory @reconfigures @new-leaves @backend-view
  Scenario: Mandatory mode refuses a revoked certificate
    Given the load balancer requires client certificates
    And the CRL bundle holds the CRLs of "Partner Issuing CA", "Partner Root CA"
    When the partner calls GET /dev-portal-xapi/products with the certificate "partner-revoked"
    Then the partner is refused
    And the backend received no request

  @C15 @mandatory @pitfall @reconfigures @new-leaves
  Scenario: Fix: with every CA's CRL in the bundle, a certificate that is not revoked is accepted
    Given the load balancer requires client certificates
    And the CRL bundle holds the CRLs of "Partner Issuing CA", "Partner Root CA"
    When the partner calls GET /dev-portal-xapi/products with the certificate "partner-a"
    Then the response status is 200
    And the response is the product list

  @C15 @optional @reconfigures @new-leaves @backend-view
  Scenario: Optional mode marks a revoked certificate FAILED
    Given the load balancer accepts client certificates optionally
    And the CRL bundle holds the CRLs of "Partner Issuing CA", "Partner Root CA"
    When the partner calls GET /echo with the certificate "partner-revoked"
    Then the response status is 200
    And every request the backend received carries X-SSL-Client-Verify "FAILED"

  @C15 @mandatory @pitfall @reconfigures @new-leaves @backend-view
  Scenario: Pitfall: a CRL bundle missing the root's CRL refuses every certificate under it
    Given the load balancer requires client certificates
    And the CRL bundle holds the CRLs of "Partner Issuing CA"
    When the partner calls GET /dev-portal-xapi/products with the certificate "partner-a"
    Then the partner is refused
    And the backend received no request

  @C15 @mandatory @pitfall @reconfigures @new-leaves @backend-view
  Scenario: Pitfall: an expired CRL refuses every certificate under its CA
    Given the load balancer requires client certificates
    And the CRL bundle holds the CRLs of "Partner Issuing CA", "Partner Root CA"
    And the CRL of "Partner Issuing CA" in the bundle has expired
    When the partner calls GET /dev-portal-xapi/products with the certificate "partner-a"
    Then the partner is refused
    And the backend received no request
