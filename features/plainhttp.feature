@plain-http
Feature: The plain-HTTP door: forged headers never reach the API without TLS
  Many balancers also listen without TLS, to redirect browsers to HTTPS or
  to serve health checks. A request that comes in there was never asked for
  a certificate, so whatever X-SSL-Client-* headers it carries are the
  caller's own: it is redirected to HTTPS, refused, or passed on with the
  balancer's own values (X-SSL-Client-Verify NONE), never with the forged
  ones. A router that forgot to strip them on its plain port let any caller
  claim any identity.

  Background:
    Given the "Partner Root CA" is a root CA
    And the "Partner Issuing CA" is an intermediate CA under the "Partner Root CA"
    And the truststore holds "Partner Issuing CA", "Partner Root CA"
    And a client certificate "partner-a" issued by the "Partner Issuing CA"

  @C19 @mandatory @backend-view
  Scenario: Mandatory mode: a plain-HTTP caller's forged identity never reaches the API
    Given the load balancer requires client certificates
    When the partner calls GET /echo over plain HTTP with the headers:
      | X-SSL-Client-Verify       | SUCCESS                      |
      | X-SSL-Client-DN           | {subject of "partner-a"}     |
      | X-SSL-Issuer              | {issuer of "partner-a"}      |
      | X-SSL-Client-Serial       | {serial of "partner-a"}      |
      | X-WSO2-CLIENT-CERTIFICATE | {certificate of "partner-a"} |
      | X_SSL_Client_Verify       | SUCCESS                      |
    Then the plain-HTTP call was redirected to HTTPS, refused, or passed on with the balancer's own values

  @C19 @optional @backend-view
  Scenario: Optional mode: a plain-HTTP caller's forged identity never reaches the API
    Given the load balancer accepts client certificates optionally
    When the partner calls GET /echo over plain HTTP with the headers:
      | X-SSL-Client-Verify       | SUCCESS                      |
      | X-SSL-Client-DN           | {subject of "partner-a"}     |
      | X-SSL-Issuer              | {issuer of "partner-a"}      |
      | X-SSL-Client-Serial       | {serial of "partner-a"}      |
      | X-WSO2-CLIENT-CERTIFICATE | {certificate of "partner-a"} |
      | X_SSL_Client_Verify       | SUCCESS                      |
    Then the plain-HTTP call was redirected to HTTPS, refused, or passed on with the balancer's own values
