package cli

import (
	"context"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/agent"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/config"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/store"
)

// DefaultPasswordEnv holds the store password when no password file is given.
const DefaultPasswordEnv = EnvPrefix + "STORE_PASSWORD"

func runStores(ctx context.Context, args []string, env Env) int {
	f := newFlags("stores", "--source DIR | --credential-bundle FILE --keystore PATH --truststore PATH [flags]", `
Build a keystore (one private-key entry: leaf + chain) and a truststore (every
trusted CA) from a directory in cert-manager's Secret layout (tls.crt, tls.key,
ca.crt) plus any extra trust bundles — or from one credential bundle (the
private key and its chain in one PEM file: a Kubernetes podCertificate
projection, cert-manager's tls-combined.pem) with the CAs from --trust-bundle.
The material is validated first (key
matches leaf, leaf chains to a trusted CA and is inside its validity window);
if it is not valid nothing is written. Outputs are written atomically and only
when what they would hold differs from what they hold now.

The store password comes from --password-file or, if that is not set, from the
environment variable named by --password-env; never from the command line.`, env)
	var (
		source, bundle, keystorePath, truststorePath, storeType, profile, alias string
		passwordFile, passwordEnv, trustPasswordFile, pemDir                    string
		bundles                                                                 listFlag
		mode                                                                    = modeFlag(0o600)
	)
	f.StringVar(&source, "source", "", "directory with tls.crt, tls.key and ca.crt (cert-manager layout)")
	f.StringVar(&bundle, "credential-bundle", "", "one PEM file with the private key and its chain, leaf first (instead of --source; needs --trust-bundle)")
	f.Var(&bundles, "trust-bundle", "extra PEM file of trusted CAs (repeatable or comma-separated)")
	f.StringVar(&keystorePath, "keystore", "", "keystore output path")
	f.StringVar(&truststorePath, "truststore", "", "truststore output path")
	f.StringVar(&storeType, "store-type", "jks", "store format: jks or pkcs12")
	f.StringVar(&profile, "pkcs12-profile", "modern2023", "PKCS#12 encryption: modern2023 (Java 12+, OpenSSL 3) or legacydes (Java 8, Cassandra 3.11)")
	f.StringVar(&alias, "alias", store.DefaultAlias, "alias of the private-key entry (JKS)")
	f.StringVar(&passwordFile, "password-file", "", "file holding the store password (one trailing newline is ignored)")
	f.StringVar(&passwordEnv, "password-env", DefaultPasswordEnv, "environment variable holding the store password, used when --password-file is not set")
	f.StringVar(&trustPasswordFile, "truststore-password-file", "", "file holding the truststore password, if it differs from the keystore's")
	f.StringVar(&pemDir, "pem-dir", "", "also write tls.key, tls.crt, ca.crt and keystore.pem (key+chain) here")
	f.Var(&mode, "mode", "permission bits of every output, octal")
	if code, ok := f.parse(args, env); !ok {
		return code
	}
	log, err := f.logger(env)
	if err != nil {
		return usageError(env, "stores", "%v", err)
	}
	switch {
	case source == "" && bundle == "":
		return usageError(env, "stores", "--source (a directory) or --credential-bundle (one PEM file) is required")
	case source != "" && bundle != "":
		return usageError(env, "stores", "set --source or --credential-bundle, not both")
	case bundle != "" && len(bundles) == 0:
		return usageError(env, "stores", "--credential-bundle needs --trust-bundle: the bundle holds no CA")
	}
	// The flags describe the single-store case of the config file; one
	// code path resolves both.
	st, err := store.ParseType(storeType)
	if err != nil {
		return usageError(env, "stores", "--store-type: %v", err)
	}
	pr, err := store.ParseProfile(profile)
	if err != nil {
		return usageError(env, "stores", "--pkcs12-profile: %v", err)
	}
	sc := config.Store{Name: "stores", Source: source, CredentialBundle: bundle, TrustBundles: bundles, PasswordFile: passwordFile,
		PasswordEnv: passwordEnv, TruststorePasswordFile: trustPasswordFile, Mode: config.Mode(mode)}
	if keystorePath != "" {
		sc.Keystore = &config.Output{Path: keystorePath, Type: config.StoreType(st), Alias: alias, Profile: config.Profile(pr)}
	}
	if truststorePath != "" {
		sc.Truststore = &config.Output{Path: truststorePath, Type: config.StoreType(st), Profile: config.Profile(pr)}
	}
	if pemDir != "" {
		sc.PEM = &config.PEM{Dir: pemDir}
	}
	if passwordFile != "" {
		sc.PasswordEnv = "" // the file wins; the env default only applies without one
	}
	if err := config.Complete(&config.Config{Stores: []config.Store{sc}}); err != nil {
		return usageError(env, "stores", "%v", err)
	}
	src, spec, err := agent.StoreSpec(sc, env.Getenv)
	if err != nil {
		return usageError(env, "stores", "%v", err)
	}
	if _, err := agent.Build("stores", src, spec, agentEnv(env, log)); err != nil {
		return ExitFailed
	}
	return ExitOK
}
