Feature: Smuggled spellings of the contract's headers never reach the API
  Header names are case-insensitive, and every backend that maps header
  names to variables (CGI, WSGI, PHP, Rack: HTTP_X_SSL_CLIENT_DN) reads an
  underscore as a dash. A balancer that replaces X-SSL-Client-DN but lets
  X_SSL_Client_DN through hands the API two identities, one of them the
  caller's own. No copy a caller sends reaches the backend, under any
  spelling, sent once or twice, with or without a certificate.

  Background:
    Given the "Partner Root CA" is a root CA
    And the "Partner Issuing CA" is an intermediate CA under the "Partner Root CA"
    And the "Unknown Root CA" is a root CA
    And the truststore holds "Partner Issuing CA", "Partner Root CA"
    And a client certificate "partner-a" issued by the "Partner Issuing CA"
    And a client certificate "stranger" issued by the "Unknown Root CA"

  @C18 @mandatory @backend-view
  Scenario: A trusted caller's headers with underscores and in other cases never reach the API
    Given the load balancer requires client certificates
    When the partner calls GET /echo with the certificate "partner-a" and the headers:
      | X_SSL_Client_DN           | CN=admin,O=Test Org          |
      | x_ssl_client_dn           | CN=root,O=Test Org           |
      | X-SSL_Client-DN           | CN=operator,O=Test Org       |
      | x-ssl-client-dn           | CN=auditor,O=Test Org        |
      | X_SSL_Client_Verify       | FORGED                       |
      | X-SSL-Client_Verify       | FORGED                       |
      | x_ssl_issuer              | CN=Someone Else              |
      | X-SSL_Issuer              | CN=Someone Else              |
      | X_SSL_CLIENT_SERIAL       | 01                           |
      | x-ssl-client-serial       | 02                           |
      | X_WSO2_CLIENT_CERTIFICATE | {certificate of "stranger"}  |
      | x-wso2_client-certificate | {certificate of "stranger"}  |
    Then the response status is 200
    And the backend received each client-certificate header once, in no other spelling
    And the backend saw exactly these client-certificate headers:
      | X-SSL-Client-Verify       | SUCCESS                      |
      | X-SSL-Client-DN           | {subject of "partner-a"}     |
      | X-SSL-Issuer              | {issuer of "partner-a"}      |
      | X-SSL-Client-Serial       | {serial of "partner-a"}      |
      | X-WSO2-CLIENT-CERTIFICATE | {certificate of "partner-a"} |

  @C18 @mandatory @backend-view
  Scenario: A trusted caller's headers sent twice never reach the API
    Given the load balancer requires client certificates
    When the partner calls GET /echo with the certificate "partner-a" and the headers:
      | X-SSL-Client-Verify       | SUCCESS                      |
      | X-SSL-Client-Verify       | SUCCESS                      |
      | X-SSL-Client-DN           | CN=admin,O=Test Org          |
      | X-SSL-Client-DN           | CN=admin,O=Test Org          |
      | X-WSO2-CLIENT-CERTIFICATE | {certificate of "stranger"}  |
      | X-WSO2-CLIENT-CERTIFICATE | {certificate of "stranger"}  |
    Then the response status is 200
    And the backend received each client-certificate header once, in no other spelling
    And the backend saw exactly these client-certificate headers:
      | X-SSL-Client-Verify       | SUCCESS                      |
      | X-SSL-Client-DN           | {subject of "partner-a"}     |
      | X-SSL-Issuer              | {issuer of "partner-a"}      |
      | X-SSL-Client-Serial       | {serial of "partner-a"}      |
      | X-WSO2-CLIENT-CERTIFICATE | {certificate of "partner-a"} |

  @C18 @mandatory @backend-view
  Scenario Outline: A caller <case> who smuggles SUCCESS is refused and reaches nothing
    Given the load balancer requires client certificates
    When the partner calls GET /echo <how> and the headers:
      | X-SSL_Client-Verify | SUCCESS                  |
      | X_SSL_Client_DN     | {subject of "partner-a"} |
      | x-ssl-client-verify | SUCCESS                  |
    Then the partner is refused
    And the backend received no request

    Examples:
      | case                           | how                             |
      | without a certificate          | without a certificate           |
      | with an untrusted certificate  | with the certificate "stranger" |

  @C18 @optional @backend-view
  Scenario: A caller without a certificate cannot smuggle SUCCESS under another spelling
    Given the load balancer accepts client certificates optionally
    When the partner calls GET /echo without a certificate and the headers:
      | X-SSL_Client-Verify       | SUCCESS                      |
      | X_SSL_CLIENT_VERIFY       | SUCCESS                      |
      | x-ssl-client-verify       | SUCCESS                      |
      | X_SSL_Client_DN           | {subject of "partner-a"}     |
      | X-SSL-Client-DN           | {subject of "partner-a"}     |
      | X_SSL_Issuer              | {issuer of "partner-a"}      |
      | X_SSL_Client_Serial       | {serial of "partner-a"}      |
      | X_WSO2_CLIENT_CERTIFICATE | {certificate of "partner-a"} |
    Then the response status is 200
    And the backend received each client-certificate header once, in no other spelling
    And the backend saw exactly these client-certificate headers:
      | X-SSL-Client-Verify | NONE |

  @C18 @optional @backend-view @id:untrusted-smuggles-success
  Scenario: An untrusted caller cannot smuggle SUCCESS under another spelling
    Given the load balancer accepts client certificates optionally
    When the partner calls GET /echo with the certificate "stranger" and the headers:
      | X_SSL_Client_Verify | SUCCESS                  |
      | X-SSL-Client-Verify | SUCCESS                  |
      | X-SSL_Client-DN     | {subject of "partner-a"} |
    Then the response status is 200
    And every request the backend received carries X-SSL-Client-Verify "FAILED"
    And the backend received each client-certificate header once, in no other spelling
