// Creates or updates a SCRAM user (SCRAM-SHA-256 and -512) through the Admin API, which is how a
// KRaft cluster that is already formatted gets one. Run by scripts/brokers.sh as a single-file
// program on Kafka's own jars:
//   java -cp '<kafka lib>/*' tools/kafka/ScramUser.java BOOTSTRAP USER PASSWORD
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialAlteration;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;

public class ScramUser {
  public static void main(String[] args) throws Exception {
    Properties config = new Properties();
    config.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
    try (Admin admin = Admin.create(config)) {
      // One alteration per user and request: the broker refuses two for the same user at once.
      for (ScramMechanism mechanism : List.of(ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512)) {
        UserScramCredentialAlteration change =
            new UserScramCredentialUpsertion(args[1], new ScramCredentialInfo(mechanism, 4096), args[2]);
        admin.alterUserScramCredentials(List.of(change)).all().get();
      }
    }
  }
}
