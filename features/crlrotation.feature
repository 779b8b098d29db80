Feature: A new CRL delivered to the running balancer takes effect
  A partner revoked after the balancer started is refused once the new CRL
  is delivered the way the balancer's documentation says (the file
  rewritten, the balancer reloaded), and a certificate the new CRL no
  longer lists is accepted. Each scenario has a balancer of its own,
  changed in place (C23).

  Background:
    Given the "Partner Root CA" is a root CA
    And the "Partner Issuing CA" is an intermediate CA under the "Partner Root CA"
    And the truststore holds "Partner Issuing CA", "Partner Root CA"

  @C23 @mandatory @reconfigures @new-leaves @backend-view
  Scenario: A certificate revoked after the balancer started is refused once the new CRL is delivered
    Given the load balancer requires client certificates
    And the CRL bundle holds the CRLs of "Partner Issuing CA", "Partner Root CA"
    And a client certificate "partner-late" issued by the "Partner Issuing CA"
    When the partner calls GET /dev-portal-xapi/products with the certificate "partner-late"
    Then the response is the product list
    When the CRL of "Partner Issuing CA" is updated to revoke "partner-late"
    And the partner calls GET /dev-portal-xapi/products with the certificate "partner-late"
    Then the partner is refused

  @C23 @mandatory @reconfigures @new-leaves @backend-view
  Scenario: A certificate the new CRL no longer lists is accepted once the new CRL is delivered
    Given a revoked client certificate "partner-revoked" issued by the "Partner Issuing CA"
    And the load balancer requires client certificates
    And the CRL bundle holds the CRLs of "Partner Issuing CA", "Partner Root CA"
    When the partner calls GET /dev-portal-xapi/products with the certificate "partner-revoked"
    Then the partner is refused
    When the CRL of "Partner Issuing CA" is updated to no longer list "partner-revoked"
    And the partner calls GET /dev-portal-xapi/products with the certificate "partner-revoked"
    Then the response is the product list

  @C23 @optional @reconfigures @new-leaves @backend-view
  Scenario: Optional mode marks a certificate revoked after the balancer started FAILED once the new CRL is delivered
    Given the load balancer accepts client certificates optionally
    And the CRL bundle holds the CRLs of "Partner Issuing CA", "Partner Root CA"
    And a client certificate "partner-late" issued by the "Partner Issuing CA"
    When the partner calls GET /echo with the certificate "partner-late"
    Then every request the backend received carries X-SSL-Client-Verify "SUCCESS"
    When the CRL of "Partner Issuing CA" is updated to revoke "partner-late"
    And the partner calls GET /echo with the certificate "partner-late"
    Then the response status is 200
    And every request the backend received carries X-SSL-Client-Verify "FAILED"
