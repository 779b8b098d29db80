@new-leaves
Feature: Big certificates arrive whole or are refused, never cut
  A certificate with many names (and a big key) makes a forwarded
  certificate header of more than 8 KiB, above many proxies' default
  header buffers. The balancer forwards it whole (the backend sees exactly
  the presented certificate, encoded as C14 says) or refuses the call with
  a 4xx before the backend; it never truncates the header, drops it while
  passing the request on, or fails with a 5xx.

  Background:
    Given the "Partner Root CA" is a root CA
    And the "Partner Issuing CA" is an intermediate CA under the "Partner Root CA"
    And the truststore holds "Partner Issuing CA", "Partner Root CA"
    And a client certificate "partner-big" with 400 DNS names issued by the "Partner Issuing CA"

  @C21 @mandatory @backend-view
  Scenario: Mandatory mode: a certificate header above 8 KiB arrives whole or the call is refused with a 4xx
    Given the load balancer requires client certificates
    When the partner calls GET /echo with the certificate "partner-big" and its chain
    Then the certificate header of "partner-big" is larger than 8 KiB
    And the certificate of "partner-big" arrived whole in the header "X-WSO2-CLIENT-CERTIFICATE", or the call was refused with a 4xx before the backend

  @C21 @optional @backend-view
  Scenario: Optional mode: a certificate header above 8 KiB arrives whole or the call is refused with a 4xx
    Given the load balancer accepts client certificates optionally
    When the partner calls GET /echo with the certificate "partner-big" and its chain
    Then the certificate header of "partner-big" is larger than 8 KiB
    And the certificate of "partner-big" arrived whole in the header "X-WSO2-CLIENT-CERTIFICATE", or the call was refused with a 4xx before the backend
